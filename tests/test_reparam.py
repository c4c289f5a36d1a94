"""Structural re-parameterization: exact equivalence, no BN left, deploy round trips."""
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from mmengine.utils.dl_utils.parrots_wrapper import _BatchNorm

from mmreplk.models import RepLKNet, RepLKNetClassifier
from mmreplk.utils import atomic_save

ROOT = Path(__file__).resolve().parents[1]


def randomize_bn(model: torch.nn.Module, seed: int = 0) -> None:
    g = torch.Generator().manual_seed(seed)
    for m in model.modules():
        if isinstance(m, _BatchNorm):
            n = m.num_features
            m.running_mean.copy_(torch.randn(n, generator=g) * 0.2)
            m.running_var.copy_(torch.rand(n, generator=g) + 0.5)
            m.weight.data.copy_(torch.rand(n, generator=g) + 0.5)
            m.bias.data.copy_(torch.randn(n, generator=g) * 0.2)


def rel_err(a: torch.Tensor, b: torch.Tensor) -> float:
    return ((a - b).abs().max() / a.abs().max()).item()


def reduced(arch: str) -> dict:
    """The arch's kernels, small kernel, dw ratio and output norms at a small size."""
    s = dict(RepLKNet.arch_zoo[arch])
    s['layers'] = [1, 1, 2, 1]
    s['channels'] = [c // 16 for c in s['channels']]
    return s


def check_equivalence(model: torch.nn.Module, x: torch.Tensor) -> torch.nn.Module:
    randomize_bn(model)
    model.eval()
    with torch.no_grad():
        before = model(x)
        model.switch_to_deploy()
        after = model(x)
    before = before if isinstance(before, tuple) else (before,)
    after = after if isinstance(after, tuple) else (after,)
    for a, b in zip(before, after):
        assert a.shape == b.shape
        assert rel_err(a, b) <= 1e-5
    assert not any(isinstance(m, _BatchNorm) for m in model.modules())
    return model


@pytest.mark.parametrize('arch', ['31B', '31L', 'XL', '3', '7', '13', '25'])
def test_reparam_equivalence_every_arch(arch):
    torch.manual_seed(0)
    model = RepLKNet(arch=reduced(arch))
    deployed = check_equivalence(model, torch.randn(2, 3, 96, 80))
    fresh = RepLKNet(arch=reduced(arch), deploy=True)
    fresh.load_state_dict(deployed.state_dict(), strict=True)


def test_reparam_full_31b_and_classifier():
    torch.manual_seed(0)
    check_equivalence(RepLKNet(arch='31B'), torch.randn(1, 3, 64, 64))
    clf = check_equivalence(RepLKNetClassifier(arch='31B', num_classes=10),
                            torch.randn(2, 3, 64, 64))
    keys = set(clf.state_dict())
    assert 'stages.0.blocks.0.large_kernel.lkb_reparam.weight' in keys
    assert not any('bn' in k or k.startswith('norm.') for k in keys)
    RepLKNetClassifier(arch='31B', num_classes=10, deploy=True).load_state_dict(
        clf.state_dict(), strict=True)


def test_switch_keeps_train_state_dtype_and_frozen_stages():
    model = RepLKNet(arch=reduced('31B'), frozen_stages=1).double().train()
    model.switch_to_deploy()
    assert model.deploy and model.training
    assert next(model.parameters()).dtype == torch.float64
    assert not any(p.requires_grad for p in model.stem.parameters())
    assert all(p.requires_grad for p in model.stages[1].parameters())


def test_switch_refuses_non_batchnorm_norms():
    model = RepLKNet(arch=reduced('31B'), norm_cfg=dict(type='GN', num_groups=2))
    with pytest.raises(TypeError, match='folds BatchNorm layers only'):
        model.switch_to_deploy()


TINY_SEG = '''
default_scope = 'mmseg'
custom_imports = dict(imports=['mmreplk'], allow_failed_imports=False)
model = dict(
    type='EncoderDecoder',
    data_preprocessor=dict(type='SegDataPreProcessor', mean=[0., 0., 0.],
                           std=[1., 1., 1.], size=(64, 64)),
    backbone=dict(type='mmreplk.RepLKNet', arch=dict(layers=[1, 1, 1, 1],
                  channels=[8, 16, 16, 16], large_kernel_sizes=[7, 7, 5, 5],
                  small_kernel=3), norm_intermediate_features=True),
    decode_head=dict(type='UPerHead', in_channels=[8, 16, 16, 16],
                     in_index=[0, 1, 2, 3], pool_scales=(1, 2), channels=8,
                     num_classes=3, norm_cfg=dict(type='BN', requires_grad=True),
                     loss_decode=dict(type='CrossEntropyLoss')),
    test_cfg=dict(mode='whole'))
'''


def test_reparameterize_tool_round_trip(tmp_path):
    from mmengine.config import Config
    from mmengine.registry import init_default_scope
    from mmseg.registry import MODELS
    cfg_file = tmp_path / 'tiny_seg.py'
    cfg_file.write_text(TINY_SEG)
    init_default_scope('mmseg')
    model = MODELS.build(Config.fromfile(str(cfg_file)).model)
    randomize_bn(model)
    atomic_save({'state_dict': model.state_dict(), 'meta': {'iter': 3}},
                str(tmp_path / 'trained.pth'))
    out = tmp_path / 'deploy.pth'
    result = subprocess.run(
        [sys.executable, str(ROOT / 'tools/reparameterize.py'), str(cfg_file),
         str(tmp_path / 'trained.pth'), str(out)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    deploy_cfg = Config.fromfile(str(tmp_path / 'deploy.py'))
    assert deploy_cfg.model.backbone.deploy is True
    deployed = MODELS.build(deploy_cfg.model)
    deployed.load_state_dict(torch.load(out, weights_only=True)['state_dict'],
                             strict=True)
    assert not any(isinstance(m, _BatchNorm) for m in deployed.backbone.modules())
    x = torch.randn(2, 3, 64, 64)
    model.eval(), deployed.eval()
    with torch.no_grad():
        a, b = model(x, mode='tensor'), deployed(x, mode='tensor')
    assert rel_err(a, b) <= 1e-5
    assert torch.equal(a.argmax(1), b.argmax(1))


def test_reparameterize_tool_rejects_mismatched_checkpoint(tmp_path):
    cfg_file = tmp_path / 'tiny_seg.py'
    cfg_file.write_text(TINY_SEG)
    atomic_save({'state_dict': {'foo': torch.zeros(1)}}, str(tmp_path / 'bad.pth'))
    result = subprocess.run(
        [sys.executable, str(ROOT / 'tools/reparameterize.py'), str(cfg_file),
         str(tmp_path / 'bad.pth'), str(tmp_path / 'o.pth')], capture_output=True,
        text=True)
    assert result.returncode == 1
    assert 'does not match' in result.stderr and 'Traceback' not in result.stderr
