"""Every checkpoint mmengine reads goes through mmreplk's safe loader.

mmengine's ``CheckpointLoader`` serves the runner's ``load_from`` and resume, its
``load_checkpoint`` and the ``Pretrained`` initializer of any module (backbone, neck or
head). Its local-file loader and its URL loader (``http(s)://``, and through it
``torchvision://``, ``open-mmlab://``, ``mmcls://``) call ``torch.load`` without
``weights_only``, so they run a pickle's code whenever torch's default allows it (torch
< 2.6, or ``TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD=1``). :func:`register_safe_loader` replaces
both with :func:`mmreplk.utils.load_checkpoint_file` (``weights_only=True``, one-line
errors naming the file and the cause). :mod:`mmreplk.engine` calls it.
"""
from typing import Any

import mmengine.runner.checkpoint as mmengine_checkpoint
from mmengine.runner import CheckpointLoader

from mmreplk.utils import download_checkpoint, load_checkpoint_file


def load_from_local(filename: str, map_location: Any = None) -> Any:
    return load_checkpoint_file(filename, map_location)


def _load_url(url: str, model_dir: str = None, map_location: Any = None,
              progress: bool = True, **kwargs) -> Any:
    return load_checkpoint_file(download_checkpoint(url, model_dir, progress), map_location)


def register_safe_loader() -> None:
    """Make mmengine load local and URL checkpoints with :func:`load_checkpoint_file`
    (idempotent)."""
    CheckpointLoader.register_scheme(prefixes='', force=True)(load_from_local)
    mmengine_checkpoint.load_url = _load_url
