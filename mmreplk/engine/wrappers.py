"""The model wrapper of distributed runs on CPU processes."""
import torch.nn as nn
from mmengine.logging import print_log
from mmengine.model import MMDistributedDataParallel, revert_sync_batchnorm
from mmengine.utils.dl_utils import mmcv_full_available

from mmreplk.errors import ConfigError
from mmreplk.registry import MODEL_WRAPPERS


def _sync_bn_types() -> tuple:
    """The SyncBN classes mmengine's ``revert_sync_batchnorm`` converts."""
    if mmcv_full_available():
        from mmcv.ops import SyncBatchNorm
        return nn.SyncBatchNorm, SyncBatchNorm
    return (nn.SyncBatchNorm, )


@MODEL_WRAPPERS.register_module()
class CPUDistributedDataParallel(MMDistributedDataParallel):
    """``MMDistributedDataParallel`` for processes without CUDA (gloo).

    DDP refuses SyncBatchNorm on CPU modules ("SyncBatchNorm layers only work with GPU
    modules"), and the configs use SyncBN as the official ones do. So the SyncBN layers
    become BatchNorm first (mmengine's ``revert_sync_batchnorm``, what it does itself
    for a run that is not distributed; parameters and statistics are kept), with one
    log line: each process then normalizes over its own samples. ``device_ids`` is
    always None (CPU modules). ``tools/train.py`` and ``tools/test.py`` choose this
    wrapper for ``--launcher pytorch`` without CUDA.

    Args:
        module: the model, on the CPU.
        **kwargs: ``MMDistributedDataParallel``'s (``broadcast_buffers``,
            ``find_unused_parameters``, ...).
    """

    def __init__(self, module: nn.Module, **kwargs) -> None:
        if any(p.device.type != 'cpu' for p in module.parameters()):
            raise ConfigError(
                'mmreplk.CPUDistributedDataParallel wraps CPU models; on a GPU use '
                'model_wrapper_cfg=dict(type=\'MMDistributedDataParallel\')')
        count = sum(isinstance(m, _sync_bn_types()) for m in module.modules())
        if count:
            module = revert_sync_batchnorm(module)
            print_log(
                f'SyncBN needs CUDA: {count} SyncBatchNorm layers run as BatchNorm in '
                'this CPU process (statistics over its own samples only)',
                logger='current')
        kwargs['device_ids'] = None
        super().__init__(module=module, **kwargs)
