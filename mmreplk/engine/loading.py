"""Every checkpoint mmengine reads goes through mmreplk's safe loader.

mmengine's ``CheckpointLoader`` serves the runner's ``load_from`` and resume, its
``load_checkpoint`` and the ``Pretrained`` initializer of any module (backbone, neck or
head). Its local-file loader and its URL loader (``http(s)://``, and through it
``torchvision://``, ``open-mmlab://``, ``mmcls://``) call ``torch.load`` without
``weights_only``, so they run a pickle's code whenever torch's default allows it (torch
< 2.6, or ``TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD=1``). :func:`register_safe_loader` replaces
both with :func:`mmreplk.utils.load_checkpoint_file` (``weights_only=True``, one-line
errors naming the file and the cause). :mod:`mmreplk.engine` calls it.

:class:`CheckpointCheckHook` makes the runner refuse a checkpoint it cannot use
(another model, another optimizer, no state dict).
"""
import re
from typing import Any, Optional

import torch
from mmengine.hooks import Hook
from mmengine.model import BaseTTAModel, is_model_wrapper
from mmengine.runner import CheckpointLoader

from mmreplk.errors import CheckpointError
from mmreplk.models.weights import describe_mismatch
from mmreplk.registry import HOOKS
from mmreplk.utils import download_checkpoint, load_checkpoint_file

from .compat import patch_url_loader, resume_request


def load_from_local(filename: str, map_location: Any = None) -> Any:
    """A local checkpoint, loaded safely."""
    return load_checkpoint_file(filename, map_location)


def load_from_url(url: str, model_dir: str = None, map_location: Any = None,
                  progress: bool = True, **kwargs) -> Any:
    """A checkpoint at ``url``, downloaded once (cached by the whole URL) and loaded
    safely."""
    return load_checkpoint_file(download_checkpoint(url, model_dir, progress), map_location)


def register_safe_loader() -> None:
    """Make mmengine load local and URL checkpoints with :func:`load_checkpoint_file`
    (idempotent)."""
    CheckpointLoader.register_scheme(prefixes='', force=True)(load_from_local)
    patch_url_loader(load_from_url)


@HOOKS.register_module()
class CheckpointCheckHook(Hook):
    """Refuse a checkpoint the runner cannot use, before it loads it (``load_from``,
    resume), with one :class:`~mmreplk.errors.CheckpointError`: a file that holds no
    state dict (a bare tensor, a list), a resume from a weights-only file or from one
    saved with another optimizer, and (``strict``) a state dict that does not match
    the model, naming the missing, unexpected and mis-shaped keys and the RepLKNet arch
    the file looks like, instead of mmengine's warning and a model left half
    initialized. ``tools/train.py`` and ``tools/test.py`` add it (``--non-strict``
    turns ``strict`` off).

    Args:
        filename: the checkpoint the runner will load (named in the message).
        config: the config file of the model (named in the message).
        strict: whether the state dict must match the model.
    """

    priority = 'VERY_HIGH'  # before any hook that reads or changes the checkpoint

    def __init__(self, filename: Optional[str] = None, config: Optional[str] = None,
                 strict: bool = True):
        self.filename = filename
        self.config = config
        self.strict = strict

    def after_load_checkpoint(self, runner, checkpoint: Any) -> None:
        what = f'checkpoint {self.filename}'
        state = checkpoint.get('state_dict', checkpoint) if isinstance(
            checkpoint, dict) else checkpoint
        if not isinstance(state, dict) or not all(
                isinstance(v, torch.Tensor) for v in state.values()):
            raise CheckpointError(f'{what} holds a {type(state).__name__}, not a state '
                                  'dict of tensors')
        if resume_request(runner)[0]:
            self._check_resumable(runner, checkpoint, what)
        if not self.strict:
            return
        model = runner.model.module if is_model_wrapper(runner.model) else runner.model
        if isinstance(model, BaseTTAModel):
            model = model.module
        state = {re.sub(r'^module\.', '', k): v for k, v in state.items()}
        problem = describe_mismatch(model.state_dict(), state)
        if problem:
            raise CheckpointError(f'{what} does not match the model of {self.config}: '
                                  f'{problem} (--non-strict loads what matches)')

    @staticmethod
    def _check_resumable(runner, checkpoint: dict, what: str) -> None:
        meta = checkpoint.get('meta')
        if not isinstance(meta, dict) or 'iter' not in meta:
            raise CheckpointError(f'{what} holds weights but no training state (meta, '
                                  'optimizer): resume needs a checkpoint this runner '
                                  'saved; to start from its weights, give it as '
                                  'load_from without --resume')
        saved = checkpoint.get('optimizer')
        optim_wrapper = getattr(runner, 'optim_wrapper', None)
        optimizer = getattr(optim_wrapper, 'optimizer', None)
        if not isinstance(saved, dict) or not isinstance(optimizer, torch.optim.Optimizer):
            return
        ours = [len(g['params']) for g in optimizer.param_groups]
        theirs = [len(g.get('params', ())) for g in saved.get('param_groups', [])]
        groups = saved.get('param_groups') or [{}]
        other_kind = set(optimizer.defaults) - set(groups[0])  # e.g. 'betas' for SGD's
        if ours != theirs or other_kind:
            raise CheckpointError(
                f'{what} was saved with another optimizer than {type(optimizer).__name__} '
                f'({len(theirs)} parameter groups of {sum(theirs)} tensors vs '
                f'{len(ours)} of {sum(ours)} here): '
                'resume needs the optim_wrapper it was trained with; to start from its '
                'weights with this optimizer, give it as load_from without --resume')
