"""Training-engine pieces: atomic checkpoints, safe resume, layer-wise lr decay.

Importing this package is the switch that turns them on for the whole process (importing
``mmreplk`` or ``mmreplk.models`` alone changes nothing global). It

* registers :class:`AtomicLocalBackend` as mmengine's ``'atomic_local'`` file backend
  (:func:`register_atomic_backend`);
* allow-lists mmengine runner checkpoints for ``torch.load(weights_only=True)``
  (:func:`allow_runner_checkpoints`), and makes every checkpoint mmengine reads (runner
  ``load_from`` and resume, ``load_checkpoint``, ``Pretrained`` init) go through
  :func:`mmreplk.utils.load_checkpoint_file` (:func:`register_safe_loader`);
* registers ``SafeCheckpointHook`` (checkpoint rotation that no kill can empty),
  ``CheckpointCheckHook`` (a checkpoint the runner cannot use is one line),
  ``ScheduleReplayHook`` (the lr schedule of a resumed run comes from the config),
  ``LayerDecayOptimizerConstructor`` and ``CPUDistributedDataParallel`` (the
  model wrapper of distributed runs on CPU processes: SyncBN turned into BN) in the
  ``mmreplk`` registries;
* lets mmengine's ``Config`` read ``mmreplk::NAME`` config paths
  (:func:`mmreplk.engine.compat.patch_config_scope`).

The calls are idempotent: importing or calling again changes nothing more. Configs switch
the engine on with ``custom_imports=dict(imports=['mmreplk', 'mmreplk.engine'])``, the
tools by importing it. It never imports mmseg or mmdet.
"""
from mmreplk.config_scope import PREFIX, config_path

from .checkpoint import (AtomicLocalBackend, allow_runner_checkpoints,
                         latest_checkpoint, register_atomic_backend)
from .compat import patch_config_scope
from .hooks import SafeCheckpointHook
from .loading import CheckpointCheckHook, register_safe_loader
from .optimizers import LayerDecayOptimizerConstructor
from .schedule import ScheduleReplayHook
from .wrappers import CPUDistributedDataParallel

register_atomic_backend()
allow_runner_checkpoints()
register_safe_loader()
patch_config_scope(config_path, PREFIX)

__all__ = [
    'AtomicLocalBackend', 'allow_runner_checkpoints', 'latest_checkpoint',
    'register_atomic_backend', 'register_safe_loader', 'LayerDecayOptimizerConstructor',
    'CPUDistributedDataParallel', 'SafeCheckpointHook', 'CheckpointCheckHook',
    'ScheduleReplayHook'
]
