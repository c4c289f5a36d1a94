"""``mmreplk.SafeCheckpointHook``: mmengine's checkpoint hook, in an order no kill can
empty.

mmengine 0.10's ``CheckpointHook`` removes the oldest kept checkpoint *before* it writes
the new one, and writes the ``last_checkpoint`` pointer in place: a run killed in between
(with ``max_keep_ckpts=1``) has no checkpoint left and a pointer to a file that is gone.
This hook keeps every feature of mmengine's (intervals, ``max_keep_ckpts``, ``save_best``,
``save_last``, ``out_dir``, ...) and changes the order of one save (and of a new best
checkpoint: saved before the previous best is removed):

1. write the new checkpoint to a temporary file, flush it, rename it into place and
   flush the folder (the ``atomic_local`` file backend, the default here for local
   folders);
2. point ``last_checkpoint`` at it (an atomic write too);
3. only then remove the checkpoints beyond ``max_keep_ckpts``.

A kill at any step leaves at least one complete checkpoint, and
:func:`mmreplk.engine.latest_checkpoint` finds the newest by content whatever the
pointer says. A write that fails (a full disk) removes its temporary file and stops the
run with one :class:`~mmreplk.errors.WorkDirError` naming the path, the free space and
the previous checkpoint, which is intact. Before training, temporary files of writes
that a kill interrupted are removed from the checkpoint folder, and on resuming the
checkpoints older than the oldest kept one (a kill before their removal left them).
"""
import os
import os.path as osp
import re
import shutil
from typing import List, Optional

from mmengine.dist import is_main_process
from mmengine.hooks import CheckpointHook

from mmreplk.errors import WorkDirError
from mmreplk.registry import HOOKS
from mmreplk.utils import atomic_write, is_atomic_temporary

from .checkpoint import latest_checkpoint
from .compat import CheckpointSaveOrder, resume_request, set_resume


def _size(nbytes: int) -> str:
    return f'{nbytes / 2**30:.1f} GB' if nbytes >= 2**30 else f'{nbytes / 2**20:.1f} MB'


def remove_orphans(folder: str) -> List[str]:
    """Remove the temporary files that interrupted atomic writes left in ``folder``;
    return their names."""
    names = [n for n in os.listdir(folder) if is_atomic_temporary(n)] \
        if osp.isdir(folder) else []
    for name in names:
        os.remove(osp.join(folder, name))
    return names


@HOOKS.register_module()
class SafeCheckpointHook(CheckpointSaveOrder, CheckpointHook):
    """:class:`mmengine.hooks.CheckpointHook` that saves, points, then removes (see the
    module docstring). Same arguments; ``backend_args`` defaults to the atomic local
    backend when the checkpoints go to a local folder."""

    def __init__(self, *args, backend_args: Optional[dict] = None, **kwargs):
        out_dir = kwargs.get('out_dir')
        if backend_args is None and kwargs.get('file_client_args') is None and (
                out_dir is None or '://' not in str(out_dir)):
            backend_args = dict(backend='atomic_local')
        super().__init__(*args, backend_args=backend_args, **kwargs)

    def before_run(self, runner) -> None:
        """An automatic resume (``resume=True``, no checkpoint named: what mmseg's and
        mmdet's own ``train.py --resume`` set) starts from :func:`latest_checkpoint` of
        this work dir instead of mmengine's reading of ``last_checkpoint``, which a
        killed save can leave stale and a copied work dir leaves naming another run's
        folder; with no checkpoint at all, training starts afresh."""
        out_dir = self.out_dir if self.out_dir and '://' not in str(self.out_dir) else None
        super().before_run(runner)
        resume, load_from = resume_request(runner)
        if resume and load_from is None:
            set_resume(runner, latest_checkpoint(runner.work_dir, out_dir))

    def before_train(self, runner) -> None:
        super().before_train(runner)
        if not is_main_process() or '://' in str(self.out_dir):
            return
        leftovers = remove_orphans(self.out_dir) + self._remove_retired()
        if leftovers:
            runner.logger.info(f'removed {len(leftovers)} file(s) that an interrupted '
                               f'checkpoint save left: {", ".join(leftovers[:3])}')

    def _remove_retired(self) -> List[str]:
        """On resuming: the checkpoints older than the oldest kept one (a kill between
        a save and its removal of the retired checkpoint leaves one)."""
        if self.max_keep_ckpts <= 0 or not self.keep_ckpt_ids:
            return []
        pattern = re.escape(self.filename_tmpl).replace(re.escape('{}'), r'(\d+)')
        names = [n for n in os.listdir(self.out_dir)
                 if (m := re.fullmatch(pattern, n)) and int(m[1]) < min(self.keep_ckpt_ids)]
        for name in names:
            os.remove(osp.join(self.out_dir, name))
        return names

    def point_to(self, runner, path: str) -> None:
        """Write mmengine's ``last_checkpoint`` pointer (atomically)."""
        pointer = osp.join(runner.work_dir, 'last_checkpoint')
        try:
            atomic_write(path.encode(), pointer)
        except OSError as e:
            raise self.write_error(pointer, e) from None

    def write_error(self, path: str, error: OSError) -> WorkDirError:
        """The one-line error of a failed write: the path, the free space, and the
        previous checkpoint, which is intact."""
        folder = osp.dirname(str(path))
        try:
            free = f'{_size(shutil.disk_usage(folder).free)} free in {folder}'
        except OSError:
            free = f'{folder} not readable'
        previous = latest_checkpoint(str(self.out_dir)) if '://' not in str(
            self.out_dir) else None
        kept = (f'the previous checkpoint {previous} is intact' if previous
                else 'there is no earlier checkpoint')
        return WorkDirError(f'could not write {path}: {error.strerror or error} ({free}); '
                            f'{kept}. Free some space (or pick another --work-dir) and '
                            'continue with --resume')
