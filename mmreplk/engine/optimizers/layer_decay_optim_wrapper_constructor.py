"""Layer-wise / stage-wise learning-rate decay for RepLKNet backbones."""
import re
from typing import List, Optional, Tuple

import torch.nn as nn
from mmengine.logging import print_log
from mmengine.optim import DefaultOptimWrapperConstructor

from mmreplk.registry import OPTIM_WRAPPER_CONSTRUCTORS

_BACKBONE = re.compile(r'^(?:.*\.)?backbone\.')


def _stage2_blocks(names: List[str]) -> int:
    """Number of blocks in stage 2 (RepLK blocks and ConvFFNs both count)."""
    ids = [int(m.group(1)) for n in names
           for m in [re.match(r'stages\.2\.blocks\.(\d+)\.', n)] if m]
    if not ids:
        raise ValueError('LayerDecayOptimizerConstructor found no '
                         '`backbone.stages.2.blocks.*` parameters: the model '
                         'has no RepLKNet backbone named `backbone`.')
    return max(ids) + 1


def replknet_group_id(name: str, decay_type: str, stage2_blocks: int,
                      blocks_per_group: int = 4) -> Tuple[int, int]:
    """Return ``(group_id, num_groups)`` of a parameter name.

    ``name`` is relative to the backbone for backbone parameters; any other
    name (heads, necks) belongs to the last group. ``layer_wise`` groups:
    stem = 0, stage 0 = 1, stage 1 and transition 0 = 2, stage 2 in groups of
    ``blocks_per_group`` blocks (transition 1 joins the first one), stage 3
    and transition 2 = next, everything else = last (14 groups for the
    31B/31L/XL depth, as the official ImageNet fine-tuning). ``stage_wise``:
    stem = 0, stage i (with the transition into it) = i + 1, the rest = 5.
    """
    stage2_groups = -(-stage2_blocks // blocks_per_group)
    if decay_type == 'layer_wise':
        num_groups = stage2_groups + 5
    elif decay_type == 'stage_wise':
        num_groups = 6
    else:
        raise ValueError(f"decay_type must be 'layer_wise' or 'stage_wise', "
                         f'got {decay_type!r}')
    last = num_groups - 1
    if name.startswith('stem.'):
        return 0, num_groups
    m = re.match(r'(stages|transitions)\.(\d+)\.(?:blocks\.(\d+)\.)?', name)
    if m is None:
        return last, num_groups
    kind, idx = m.group(1), int(m.group(2))
    stage = idx + 1 if kind == 'transitions' else idx
    if decay_type == 'stage_wise':
        return stage + 1, num_groups
    if stage < 2:
        return stage + 1, num_groups
    if stage == 2:
        if m.group(3) is not None:
            return 3 + int(m.group(3)) // blocks_per_group, num_groups
        # transition 1 opens stage 2; stage 2's own output norm closes it.
        return (3 if kind == 'transitions' else 2 + stage2_groups), num_groups
    return last - 1, num_groups


@OPTIM_WRAPPER_CONSTRUCTORS.register_module()
class LayerDecayOptimizerConstructor(DefaultOptimWrapperConstructor):
    """Optimizer constructor with RepLKNet layer-wise / stage-wise lr decay.

    ``paramwise_cfg=dict(decay_rate=0.9, decay_type='layer_wise')``: a
    parameter in group ``g`` of ``G`` groups gets
    ``lr * decay_rate ** (G - 1 - g)`` (the head keeps the base lr, the stem
    the smallest); 1-D parameters (norms, biases) get no weight decay, so
    each group is split in a decay and a no-decay param group. See
    :func:`replknet_group_id` for the groups. Works for any mmseg / mmdet
    model whose RepLKNet is the attribute ``backbone``.
    """

    def add_params(self, params: List[dict], module: nn.Module,
                   prefix: str = '', is_dcn_module: Optional[int] = None,
                   **kwargs) -> None:
        """Append one param group per trainable parameter to ``params``."""
        decay_rate = self.paramwise_cfg.get('decay_rate')
        if decay_rate is None:
            raise ValueError('LayerDecayOptimizerConstructor needs '
                             'paramwise_cfg.decay_rate (e.g. 0.9)')
        decay_type = self.paramwise_cfg.get('decay_type', 'layer_wise')
        named = [(n, p) for n, p in module.named_parameters()
                 if p.requires_grad]
        backbone_names = [_BACKBONE.sub('', n) for n, _ in named
                          if _BACKBONE.match(n)]
        stage2_blocks = _stage2_blocks(backbone_names)
        groups: dict = {}
        for name, param in named:
            local = _BACKBONE.sub('', name) if _BACKBONE.match(name) else ''
            gid, num_groups = replknet_group_id(local, decay_type,
                                                stage2_blocks)
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
