"""RepLKNet.get_layer_depth and mmreplk.LayerDecayOptimizerConstructor give each
parameter the official layer-wise group and its lr."""
import warnings

import pytest
import torch.nn as nn
from mmengine.config import Config
from mmengine.optim import build_optim_wrapper
from mmengine.registry import DefaultScope

from mmreplk.engine.optimizers import check_optimizer_constructor
from mmreplk.errors import ConfigError
from mmreplk.models import RepLKNet, RepLKNetClassifier

RATE = 0.5
# 31B's depth (2, 2, 18, 2) at tiny widths: 36 blocks in stage 2.
DEEP_TINY = dict(layers=[2, 2, 18, 2], channels=[8, 8, 8, 8],
                 large_kernel_sizes=[5, 5, 5, 5], small_kernel=3, dw_ratio=1)


def official_group(name: str) -> int:
    """The rules of get_num_layer_for_replknet (optim_factory.py of the
    official repository) for a backbone parameter name, written out here
    independently of mmreplk: stem 0; stages 0, 1 -> 1, 2; stage 2 block j ->
    3 + j // 4; stage 3 -> 12; transitions 0, 1 -> 1, 2 and transition 2 ->
    11; anything else 13."""
    parts = name.split('.')
    if parts[0] == 'stem':
        return 0
    if parts[0] == 'transitions':
        return {0: 1, 1: 2, 2: 11}[int(parts[1])]
    if parts[0] == 'stages':
        stage, block = int(parts[1]), int(parts[3])
        return {0: 1, 1: 2, 3: 12}.get(stage, 3 + block // 4)
    return 13


class Segmentor(nn.Module):
    """Stands for an mmseg / mmdet model: ``backbone`` plus a head."""

    def __init__(self, **backbone):
        super().__init__()
        self.backbone = RepLKNet(arch=DEEP_TINY, **backbone)
        self.decode_head = nn.Conv2d(8, 3, 1)


def build(model: nn.Module, decay_type: str, scope: str = 'mmseg', **paramwise):
    cfg = dict(
        constructor='mmreplk.LayerDecayOptimizerConstructor',
        optimizer=dict(type='AdamW', lr=1.0, weight_decay=0.05),
        paramwise_cfg=dict(decay_rate=RATE, decay_type=decay_type, **paramwise))
    with DefaultScope.overwrite_default_scope(scope):
        wrapper = build_optim_wrapper(model, cfg)
    lr, wd = {}, {}
    for group in wrapper.optimizer.param_groups:
        for name in group['param_names']:
            lr[name], wd[name] = group['lr'], group['weight_decay']
    assert set(lr) == {n for n, _ in model.named_parameters()}
    return lr, wd


@pytest.mark.parametrize('scope', ['mmseg', 'mmdet'])
def test_layer_wise_groups_are_the_official_ones(scope):
    model = Segmentor()
    lr, wd = build(model, 'layer_wise', scope)
    seen = set()
    for name, param in model.named_parameters():
        local = name[len('backbone.'):] if name.startswith('backbone.') \
            else 'head'
        group = official_group(local)
        seen.add(group)
        assert model.backbone.get_layer_depth(name) == (group, 14), name
        assert lr[name] == RATE**(13 - group), name
        assert wd[name] == (0.0 if param.ndim == 1 else 0.05), name
    assert seen == set(range(14))


def test_stage_wise_six_groups():
    model = Segmentor()
    lr, _ = build(model, 'stage_wise')
    # stem 0, stage i with the transition after it i + 1, the rest 5
    assert lr['backbone.stem.1.conv.weight'] == RATE**5
    assert lr['backbone.stages.0.blocks.3.pw1.conv.weight'] == RATE**4
    assert lr['backbone.transitions.0.0.conv.weight'] == RATE**4
    assert lr['backbone.stages.1.blocks.0.prelkb_bn.weight'] == RATE**3
    assert lr['backbone.stages.2.blocks.35.pw1.conv.weight'] == RATE**2
    assert lr['backbone.transitions.2.1.conv.weight'] == RATE**2
    assert lr['backbone.stages.3.blocks.1.pw1.conv.weight'] == RATE
    assert lr['decode_head.weight'] == 1.0


def test_output_norms_and_other_depths():
    # XL's output norms (the official function has no rule for them) join
    # the last group of their stage.
    deep = RepLKNet(arch=DEEP_TINY, norm_intermediate_features=True)
    assert [deep.get_layer_depth(f'backbone.stages.{i}.norm.weight')[0]
            for i in range(4)] == [1, 2, 11, 12]
    # Another depth: every stage in groups of 4 blocks (2 layers).
    other = RepLKNet(arch=dict(DEEP_TINY, layers=[1, 1, 3, 1]))
    ids = [other.get_layer_depth(f'backbone.{n}')[0] for n in (
        'stem.0.conv.weight', 'stages.0.blocks.1.pw1.conv.weight',
        'transitions.1.0.conv.weight', 'stages.2.blocks.3.pw2.conv.weight',
        'stages.2.blocks.4.pw1.conv.weight', 'transitions.2.0.conv.weight',
        'stages.3.blocks.0.pw1.conv.weight', 'neck.conv.weight')]
    assert ids == [0, 1, 2, 3, 4, 4, 5, 6]


def test_mmpretrain_contract():
    # mmpretrain's classifier calls backbone.get_layer_depth(name, 'backbone.')
    # on full names and scales the lr by rate ** (num_layers - 1 - layer_id).
    model = RepLKNetClassifier(arch=DEEP_TINY, num_classes=3)
    assert model.get_layer_depth('head.fc.weight') == (13, 14)
    assert model.get_layer_depth('backbone.transitions.2.0.conv.weight') == (
        11, 14)
    # the flat ImageNet model: no prefix, its final norm and head last
    assert model.get_layer_depth('stages.1.blocks.0.pw1.conv.weight',
                                 '') == (2, 14)
    assert model.get_layer_depth('norm.weight', '') == (13, 14)


def test_bad_settings_are_reported():
    with pytest.raises(ValueError, match='decay_type'):
        build(Segmentor(), 'block_wise')
    with pytest.raises(ValueError, match='backbone'):
        build_optim_wrapper(
            nn.Sequential(nn.Conv2d(3, 3, 1)),
            dict(constructor='mmreplk.LayerDecayOptimizerConstructor',
                 optimizer=dict(type='AdamW', lr=1.0),
                 paramwise_cfg=dict(decay_rate=0.9)))


def test_ignored_paramwise_keys_are_warned_in_one_line():
    with pytest.warns(UserWarning) as record:
        build(Segmentor(), 'stage_wise', num_layers=12, norm_decay_mult=0.)
    message = str(record[0].message)
    assert 'ignores paramwise_cfg norm_decay_mult, num_layers' in message
    assert '\n' not in message
    with warnings.catch_warnings():
        warnings.simplefilter('error')
        build(Segmentor(), 'stage_wise')


HOST = 'LearningRateDecayOptimizerConstructor'


@pytest.mark.parametrize('scope, constructor, backbone, refused', [
    ('mmseg', HOST, 'mmreplk.RepLKNet', True),
    ('mmdet', HOST, 'mmreplk.RepLKNet', True),
    ('mmdet', f'mmseg.{HOST}', 'mmreplk.RepLKNet', True),
    ('mmseg', 'LayerDecayOptimizerConstructor', 'mmreplk.RepLKNet', True),  # mmseg's BEiT one
    ('mmseg', 'mmreplk.LayerDecayOptimizerConstructor', 'mmreplk.RepLKNet', False),
    ('mmdet', 'DefaultOptimWrapperConstructor', 'mmreplk.RepLKNet', False),
    ('mmpretrain', 'LearningRateDecayOptimWrapperConstructor', 'mmreplk.RepLKNet', False),
    ('mmseg', HOST, 'mmpretrain.ConvNeXt', False),
    ('mmdet', None, 'mmreplk.RepLKNet', False),
])
def test_host_layer_decay_on_a_replknet_is_a_config_error(scope, constructor, backbone,
                                                          refused):
    optim = dict(type='OptimWrapper', optimizer=dict(type='AdamW', lr=1e-4))
    if constructor:
        optim.update(constructor=constructor, paramwise_cfg=dict(num_layers=12))
    cfg = Config(dict(default_scope=scope, optim_wrapper=optim,
                      model=dict(backbone=dict(type=backbone))))
    if not refused:
        check_optimizer_constructor(cfg)
        return
    with pytest.raises(ConfigError) as error:
        check_optimizer_constructor(cfg)
    message = str(error.value)
    assert f"constructor='{constructor}'" in message and '\n' not in message
    assert "set optim_wrapper.constructor='mmreplk.LayerDecayOptimizerConstructor'" in message
