"""Every place where mmreplk reaches into mmengine beyond its public API, in one module.

mmengine has no public seam for these; each entry names what it changes and the mmengine
releases it was checked against (:data:`CHECKED`). ``tests/test_engine/test_compat.py``
fails loudly when a patched function's signature or the private attribute it relies on
changes, so an mmengine upgrade cannot break them silently; ``setup.cfg`` pins the
range.

* :func:`patch_config_scope`: ``Config.fromfile`` and ``Config._get_cfg_path`` read
  ``mmreplk::NAME`` paths (mmengine hard-codes the packages its ``scope::`` prefix
  knows, and requires a folder in the name).
* :func:`patch_url_loader`: ``mmengine.runner.checkpoint.load_url`` (the URL loader
  behind ``http(s)://``, ``torchvision://``, ``open-mmlab://``) goes through a safe
  loader.
* :func:`resume_request` / :func:`set_resume`: the runner's ``_resume`` / ``_load_from``
  (an automatic resume: ``resume=True`` with no checkpoint named).
* :class:`CheckpointSaveOrder`: ``CheckpointHook._save_checkpoint_with_step`` and
  ``_save_best_checkpoint`` in an order no kill can empty (save, point, then remove).
"""
from typing import Callable, Dict, List, Optional, Tuple

import mmengine

#: The mmengine releases these patches were checked against.
CHECKED = ('0.10.5', '0.10.6', '0.10.7')
#: The mmengine functions replaced here, as they were (for the compatibility test).
REPLACED: Dict[str, Callable] = {}


# --------------------------------------------------------------------------- config
def patch_config_scope(resolve: Callable[[str], str], prefix: str) -> None:
    """Make ``Config.fromfile(path)`` and ``_base_ = path`` resolve paths that start with
    ``prefix`` through ``resolve`` (idempotent); any other path goes to mmengine
    unchanged."""
    from mmengine.config import Config
    if getattr(Config.fromfile, '_mmreplk_scope', False):
        return
    fromfile, get_cfg_path = Config.fromfile, Config._get_cfg_path
    REPLACED.update({'Config.fromfile': fromfile, 'Config._get_cfg_path': get_cfg_path})

    def fromfile_with_scope(filename, *args, **kwargs):
        if isinstance(filename, str) and filename.startswith(prefix):
            filename = resolve(filename)
        return fromfile(filename, *args, **kwargs)

    def get_cfg_path_with_scope(cfg_path: str, filename: str
                                ) -> Tuple[str, Optional[str]]:
        if cfg_path.startswith(prefix):
            return resolve(cfg_path), None
        return get_cfg_path(cfg_path, filename)

    fromfile_with_scope._mmreplk_scope = True
    fromfile_with_scope.__doc__ = fromfile.__doc__
    Config.fromfile = staticmethod(fromfile_with_scope)
    Config._get_cfg_path = staticmethod(get_cfg_path_with_scope)


# --------------------------------------------------------------------------- loading
def patch_url_loader(load_url: Callable) -> None:
    """Replace mmengine's URL checkpoint loader (``load_url(url, model_dir=None,
    map_location=None, ...)``) by ``load_url`` (idempotent)."""
    import mmengine.runner.checkpoint as mmengine_checkpoint
    REPLACED.setdefault('load_url', mmengine_checkpoint.load_url)
    mmengine_checkpoint.load_url = load_url


# --------------------------------------------------------------------------- resume
def resume_request(runner) -> Tuple[bool, Optional[str]]:
    """``(resume, load_from)`` as the runner will act on them in ``load_or_resume``."""
    return runner._resume, runner._load_from


def set_resume(runner, load_from: Optional[str]) -> None:
    """Resume from ``load_from``; ``None`` starts afresh."""
    runner._load_from = load_from
    runner._resume = load_from is not None


# --------------------------------------------------------------------------- saving
class CheckpointSaveOrder:
    """Mixin for a subclass of mmengine's ``CheckpointHook`` (listed before it): one save
    writes the new checkpoint, then points ``last_checkpoint`` at it, then removes the
    checkpoints beyond ``max_keep_ckpts``; a new best checkpoint is saved before the
    previous best is removed. mmengine removes first. The subclass provides
    ``point_to(runner, path)`` (write the pointer) and ``write_error(path, error)``."""

    def _save_checkpoint_with_step(self, runner, step, meta) -> None:
        from mmengine.dist import is_main_process
        retired = []
        if self.max_keep_ckpts > 0 and not (self.keep_ckpt_ids
                                            and self.keep_ckpt_ids[-1] == step):
            if len(self.keep_ckpt_ids) == self.max_keep_ckpts:
                retired.append(self.keep_ckpt_ids.popleft())
            self.keep_ckpt_ids.append(step)
            runner.message_hub.update_info('keep_ckpt_ids', list(self.keep_ckpt_ids))

        ckpt_filename = self.filename_tmpl.format(step)
        self.last_ckpt = self.file_backend.join_path(self.out_dir, ckpt_filename)
        runner.message_hub.update_info('last_ckpt', self.last_ckpt)
        try:
            runner.save_checkpoint(
                self.out_dir, ckpt_filename, self.file_client_args,
                save_optimizer=self.save_optimizer,
                save_param_scheduler=self.save_param_scheduler, meta=meta,
                by_epoch=self.by_epoch, backend_args=self.backend_args, **self.args)
        except OSError as e:
            raise self.write_error(self.last_ckpt, e) from None
        if not is_main_process():
            return
        self.point_to(runner, str(self.last_ckpt))
        self._remove([self.file_backend.join_path(self.out_dir,
                                                  self.filename_tmpl.format(old))
                      for old in retired])

    def _save_best_checkpoint(self, runner, metrics) -> None:
        backend, retired = self.file_backend, []
        backend.remove = backend.rmtree = retired.append  # deferred, see below
        try:
            super()._save_best_checkpoint(runner, metrics)
        except OSError as e:
            raise self.write_error(str(self.best_ckpt_path or self.out_dir), e) from None
        finally:
            del backend.remove, backend.rmtree
        self._remove(retired)

    def _remove(self, paths: List[str]) -> None:
        for path in paths:
            if self.file_backend.isfile(path):
                self.file_backend.remove(path)
            elif self.file_backend.isdir(path):  # deepspeed saves folders
                self.file_backend.rmtree(path)


def mmengine_version() -> str:
    """The running mmengine's version."""
    return mmengine.__version__


__all__ = ['CHECKED', 'REPLACED', 'CheckpointSaveOrder', 'mmengine_version', 'patch_config_scope',
           'patch_url_loader', 'resume_request', 'set_resume']
