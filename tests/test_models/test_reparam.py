"""Structural re-parameterization: exact equivalence, no BN left, deploy round trips."""
import pytest
import torch
from conftest import TINY_ARCH, import_tool, randomize_bn, run_tool
from mmengine.utils.dl_utils.parrots_wrapper import _BatchNorm

from mmreplk.errors import CheckpointError, ConfigError
from mmreplk.models import ARCH_ZOO, RepLKNet, RepLKNetClassifier
from mmreplk.utils import atomic_save

REPARAMETERIZE = 'model_converters/reparameterize.py'


def rel_err(a: torch.Tensor, b: torch.Tensor) -> float:
    return ((a - b).abs().max() / a.abs().max()).item()


def reduced(arch: str) -> dict:
    """The arch's kernels, small kernel, dw ratio and output norms at a small size."""
    s = dict(ARCH_ZOO[arch])
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


@pytest.mark.parametrize('arch', sorted(ARCH_ZOO))
def test_reparam_equivalence_every_arch(arch):
    torch.manual_seed(0)
    model = RepLKNet(arch=reduced(arch))
    deployed = check_equivalence(model, torch.randn(2, 3, 96, 80))
    fresh = RepLKNet(arch=reduced(arch), deploy=True)
    fresh.load_state_dict(deployed.state_dict(), strict=True)


@pytest.mark.slow
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
    with pytest.raises(ConfigError, match='folds BatchNorm layers only'):
        model.switch_to_deploy()


TINY_SEG = f'''
default_scope = 'mmseg'
custom_imports = dict(imports=['mmreplk'], allow_failed_imports=False)
model = dict(
    type='EncoderDecoder',
    data_preprocessor=dict(type='SegDataPreProcessor', mean=[0., 0., 0.],
                           std=[1., 1., 1.], size=(64, 64)),
    backbone=dict(type='mmreplk.RepLKNet', arch={TINY_ARCH!r},
                  norm_intermediate_features=True),
    decode_head=dict(type='UPerHead', in_channels={TINY_ARCH['channels']!r},
                     in_index=[0, 1, 2, 3], pool_scales=(1, 2), channels=8,
                     num_classes=3, norm_cfg=dict(type='BN', requires_grad=True),
                     loss_decode=dict(type='CrossEntropyLoss')),
    test_cfg=dict(mode='whole'))
'''


@pytest.mark.slow
def test_reparameterize_tool_round_trip(tmp_path):
    from mmengine.config import Config
    from mmengine.registry import DefaultScope
    from mmseg.registry import MODELS
    cfg_file = tmp_path / 'tiny_seg.py'
    cfg_file.write_text(TINY_SEG)
    cfg = Config.fromfile(str(cfg_file))
    with DefaultScope.overwrite_default_scope('mmseg'):
        model = MODELS.build(cfg.model)
    randomize_bn(model)
    atomic_save({'state_dict': model.state_dict(), 'meta': {'iter': 3}},
                str(tmp_path / 'trained.pth'))
    out = tmp_path / 'deploy.pth'
    # --cfg-options reaches the model: the decode head's dropout is not in the weights
    result = run_tool(REPARAMETERIZE, str(cfg_file), str(tmp_path / 'trained.pth'),
                      str(out), options={'model.decode_head.dropout_ratio': '0.3'})
    assert result.returncode == 0, result.stderr
    deploy_cfg = Config.fromfile(str(tmp_path / 'deploy.py'))
    assert deploy_cfg.model.backbone.deploy is True
    assert deploy_cfg.model.decode_head.dropout_ratio == 0.3
    with DefaultScope.overwrite_default_scope('mmseg'):
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


@pytest.mark.slow
def test_reparameterize_tool_rejects_mismatched_checkpoint(tmp_path):
    """Strict loading: one extra key is enough to refuse, in one line."""
    from mmengine.config import Config
    from mmengine.registry import DefaultScope
    from mmseg.registry import MODELS
    cfg_file = tmp_path / 'tiny_seg.py'
    cfg_file.write_text(TINY_SEG)
    with DefaultScope.overwrite_default_scope('mmseg'):
        state = MODELS.build(Config.fromfile(str(cfg_file)).model).state_dict()
    state['decode_head.extra.weight'] = torch.zeros(1)
    atomic_save({'state_dict': state}, str(tmp_path / 'bad.pth'))
    tool = import_tool(REPARAMETERIZE)
    with pytest.raises(CheckpointError, match=r'does not match .*tiny_seg.py: 1 '
                       r'unexpected keys \(decode_head.extra.weight\)'):
        tool.reparameterize(tool.load_config(str(cfg_file)), str(tmp_path / 'bad.pth'),
                            str(tmp_path / 'o.pth'), str(tmp_path / 'o.py'))
    assert not (tmp_path / 'o.pth').exists()
