"""mmreplk.LayerDecayOptimizerConstructor gives each group its documented lr."""
import math

import pytest
import torch.nn as nn
from mmengine.optim import build_optim_wrapper
from mmengine.registry import DefaultScope

from mmreplk.engine.optimizers import replknet_group_id
from mmreplk.models import RepLKNet

# 31B's depth (2, 2, 18, 2) at tiny widths: 36 blocks in stage 2.
DEEP_TINY = dict(layers=[2, 2, 18, 2], channels=[8, 8, 8, 8],
                 large_kernel_sizes=[5, 5, 5, 5], small_kernel=3, dw_ratio=1)


class Segmentor(nn.Module):
    """Stands for an mmseg / mmdet model: ``backbone`` plus a head."""

    def __init__(self):
        super().__init__()
        self.backbone = RepLKNet(arch=DEEP_TINY)
        self.decode_head = nn.Conv2d(8, 3, 1)


def build(decay_type: str, scope: str = 'mmseg'):
    model = Segmentor()
    cfg = dict(
        constructor='mmreplk.LayerDecayOptimizerConstructor',
        optimizer=dict(type='AdamW', lr=1.0, weight_decay=0.05),
        paramwise_cfg=dict(decay_rate=0.5, decay_type=decay_type))
    with DefaultScope.overwrite_default_scope(scope):
        wrapper = build_optim_wrapper(model, cfg)
    lr, wd = {}, {}
    for group in wrapper.optimizer.param_groups:
        for name in group['param_names']:
            lr[name], wd[name] = group['lr'], group['weight_decay']
    assert set(lr) == {n for n, _ in model.named_parameters()}
    return lr, wd


@pytest.mark.parametrize('scope', ['mmseg', 'mmdet'])
def test_layer_wise_fourteen_groups(scope):
    lr, wd = build('layer_wise', scope)
    g = {name: round(math.log(v, 0.5)) for name, v in lr.items()}
    # lr = 0.5 ** (13 - group): stem 13 ... head 0
    expect = {
        'backbone.stem.0.conv.weight': 13,
        'backbone.stages.0.blocks.3.pw1.conv.weight': 12,
        'backbone.transitions.0.0.conv.weight': 11,
        'backbone.stages.1.blocks.0.prelkb_bn.weight': 11,
        'backbone.transitions.1.1.conv.weight': 10,
        'backbone.stages.2.blocks.3.pw2.conv.weight': 10,
        'backbone.stages.2.blocks.4.prelkb_bn.bias': 9,
        'backbone.stages.2.blocks.35.pw2.conv.weight': 2,
        'backbone.transitions.2.0.conv.weight': 1,
        'backbone.stages.3.blocks.0.pw1.conv.weight': 1,
        'decode_head.weight': 0,
    }
    for name, group in expect.items():
        assert g[name] == group, name
    assert sorted(set(g.values())) == list(range(14))
    assert wd['backbone.stem.0.conv.weight'] == 0.05
    assert wd['backbone.stem.0.bn.weight'] == 0.0
    assert wd['decode_head.bias'] == 0.0


def test_stage_wise_six_groups():
    lr, _ = build('stage_wise')
    assert lr['backbone.stem.1.conv.weight'] == 0.5**5
    assert lr['backbone.stages.0.blocks.0.pw1.conv.weight'] == 0.5**4
    assert lr['backbone.transitions.0.0.conv.weight'] == 0.5**3
    assert lr['backbone.stages.2.blocks.35.pw1.conv.weight'] == 0.5**2
    assert lr['backbone.stages.3.blocks.1.pw1.conv.weight'] == 0.5
    assert lr['decode_head.weight'] == 1.0


def test_group_ids_of_31b_depth():
    ids = {replknet_group_id(f'stages.2.blocks.{j}.x', 'layer_wise', 36)[0]
           for j in range(36)}
    assert ids == set(range(3, 12))
    assert replknet_group_id('stem.0.conv.weight', 'layer_wise', 36) == (0,
                                                                         14)


def test_bad_settings_are_reported():
    with pytest.raises(ValueError, match='decay_type'):
        build('block_wise')
    model = nn.Sequential(nn.Conv2d(3, 3, 1))
    with pytest.raises(ValueError, match='backbone'):
        build_optim_wrapper(
            model,
            dict(constructor='mmreplk.LayerDecayOptimizerConstructor',
                 optimizer=dict(type='AdamW', lr=1.0),
                 paramwise_cfg=dict(decay_rate=0.9)))
