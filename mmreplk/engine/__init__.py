"""Training-engine pieces: atomic checkpoints, safe resume, layer-wise lr decay.

Importing this package registers the ``'atomic_local'`` file backend and the
``LayerDecayOptimizerConstructor``, and allow-lists mmengine runner checkpoints
for ``torch.load(weights_only=True)``. It never imports mmseg or mmdet.
"""
from .checkpoint import (AtomicLocalBackend, allow_runner_checkpoints,
                         latest_checkpoint)
from .optimizers import LayerDecayOptimizerConstructor

allow_runner_checkpoints()

__all__ = [
    'AtomicLocalBackend', 'allow_runner_checkpoints', 'latest_checkpoint',
    'LayerDecayOptimizerConstructor'
]
