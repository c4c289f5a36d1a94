"""Layer-wise / stage-wise learning-rate decay for RepLKNet backbones."""
import warnings
from typing import List, Optional

import torch.nn as nn
from mmengine.logging import print_log
from mmengine.optim import DefaultOptimWrapperConstructor

from mmreplk.registry import OPTIM_WRAPPER_CONSTRUCTORS


@OPTIM_WRAPPER_CONSTRUCTORS.register_module()
class LayerDecayOptimizerConstructor(DefaultOptimWrapperConstructor):
    """Optimizer constructor with RepLKNet layer-wise / stage-wise lr decay.

    ``paramwise_cfg=dict(decay_rate=0.9, decay_type='layer_wise')``: the groups
    are the backbone's ``get_layer_depth(name, 'backbone.', decay_type)`` (the
    official grouping, see :meth:`mmreplk.models.RepLKNet.get_layer_depth`); a
    parameter in group ``g`` of ``G`` gets ``lr * decay_rate ** (G - 1 - g)``
    (the head keeps the base lr, the stem the smallest). 1-D parameters (norms,
    biases) get no weight decay, as the official fine-tuning, so each group is
    split in a decay and a no-decay param group. Works for any mmseg / mmdet
    model whose backbone is the attribute ``backbone``. Other ``paramwise_cfg`` keys
    (``num_layers`` of the ConvNeXt constructors, ``custom_keys``, ``*_mult``) are
    ignored, with a one-line warning naming them.
    """

    USED_KEYS = ('decay_rate', 'decay_type')

    def add_params(self, params: List[dict], module: nn.Module,
                   prefix: str = '', is_dcn_module: Optional[int] = None,
                   **kwargs) -> None:
        """Append one param group per (lr group, decay or not) to ``params``."""
        decay_rate = self.paramwise_cfg.get('decay_rate')
        if decay_rate is None:
            raise ValueError('LayerDecayOptimizerConstructor needs '
                             'paramwise_cfg.decay_rate (e.g. 0.9)')
        decay_type = self.paramwise_cfg.get('decay_type', 'layer_wise')
        ignored = sorted(set(self.paramwise_cfg) - set(self.USED_KEYS))
        if ignored:
            warnings.warn(
                'LayerDecayOptimizerConstructor ignores paramwise_cfg '
                f'{", ".join(ignored)} (it takes only decay_rate and decay_type; the '
                'groups come from the backbone\'s depth)', stacklevel=2)
        backbone = getattr(module, 'backbone', None)
        if not hasattr(backbone, 'get_layer_depth'):
            raise ValueError('LayerDecayOptimizerConstructor needs a model whose '
                             '`backbone` has get_layer_depth (a RepLKNet); got '
                             f'{type(backbone).__name__}')
        groups: dict = {}
        num_groups = 0
        for name, param in module.named_parameters():
            if not param.requires_grad:
                continue
            gid, num_groups = backbone.get_layer_depth(name, 'backbone.',
                                                       decay_type)
            no_decay = param.ndim == 1
            if (gid, no_decay) not in groups:
                scale = decay_rate**(num_groups - 1 - gid)
                groups[(gid, no_decay)] = dict(
                    params=[],
                    param_names=[],
                    lr=self.base_lr * scale,
                    weight_decay=0. if no_decay else self.base_wd,
                    group_id=gid,
                    lr_scale=scale)
            groups[(gid, no_decay)]['params'].append(param)
            groups[(gid, no_decay)]['param_names'].append(name)
        params.extend(groups[k] for k in sorted(groups))
        counts = {g['group_id']: 0 for g in groups.values()}
        for g in groups.values():
            counts[g['group_id']] += len(g['params'])
        print_log(
            f'LayerDecayOptimizerConstructor ({decay_type}, rate '
            f'{decay_rate}): {num_groups} groups, parameters per group '
            f'{dict(sorted(counts.items()))}', logger='current')
