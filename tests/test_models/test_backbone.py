"""RepLKNet: architecture, exact official names and counts, training behaviour, bad input.

Full-size models are built on the meta device (shapes and counts without memory or
compute)."""
import math

import pytest
import torch
from conftest import TINY_ARCH
from mmengine.utils.dl_utils.parrots_wrapper import _BatchNorm
from official_format import OFFICIAL_PARAMS, num_params, official_shapes

from mmreplk.errors import ConfigError
from mmreplk.models import ARCH_ZOO, RepLKNet, RepLKNetClassifier

TINY = TINY_ARCH
META = torch.device('meta')


def expected_sizes(h: int, w: int, n: int = 4):
    """Spatial sizes of the outputs: stem halves twice, each transition once (ceil)."""
    sizes = []
    h, w = math.ceil(math.ceil(h / 2) / 2), math.ceil(math.ceil(w / 2) / 2)
    for _ in range(n):
        sizes.append((h, w))
        h, w = math.ceil(h / 2), math.ceil(w / 2)
    return sizes


# The paper's ablations: 31B's depths and widths with these kernels (no small kernel
# for RepLKNet-3); 31B / 31L / XL are pinned by their published parameter counts.
ABLATION_KERNELS = {'3': [3, 3, 3, 3], '7': [7, 7, 7, 7], '13': [13, 13, 13, 13],
                    '25': [25, 25, 25, 13]}


@pytest.mark.parametrize('arch', sorted(ABLATION_KERNELS))
def test_ablation_archs(arch):
    """Built on 'meta' (no memory): depths, widths, kernels. Forward wiring is checked
    at tiny width, full-width numerics in test_reparam_full_31b_and_classifier."""
    with META:  # as an int too: what --cfg-options model.backbone.arch=13 gives
        model = RepLKNet(arch=int(arch))
    lk = [s.blocks[0].large_kernel for s in model.stages]
    assert [len(s.blocks) // 2 for s in model.stages] == ARCH_ZOO['31B']['layers']
    assert [s.blocks[-1].pw2.conv.out_channels for s in model.stages] == \
        ARCH_ZOO['31B']['channels']
    assert [m.lkb_origin.conv.kernel_size[0] for m in lk] == ABLATION_KERNELS[arch]
    small = {m.small_conv.conv.kernel_size[0] if hasattr(m, 'small_conv') else None
             for m in lk}
    assert small == ({None} if arch == '3' else {5})


@pytest.mark.parametrize('hw', [(32, 32), (65, 47), (97, 128), (20, 36)])
def test_any_input_size_and_out_indices(hw):
    model = RepLKNet(arch=TINY, out_indices=(0, 2, 3)).eval()
    outs = model(torch.randn(2, 3, *hw))
    sizes = expected_sizes(*hw)
    assert [tuple(o.shape) for o in outs] == [
        (2, TINY['channels'][i], *sizes[i]) for i in (0, 2, 3)]


def test_outputs_are_taken_before_the_transition():
    model = RepLKNet(arch=TINY).eval()
    x = torch.randn(1, 3, 64, 64)
    outs = model(x)
    with torch.no_grad():
        y = x
        for layer in model.stem:
            y = layer(y)
        y = model.stages[0](y)
        assert torch.allclose(y, outs[0], atol=1e-6)  # raw trunk, no norm (not XL)
        assert torch.allclose(model.stages[1](model.transitions[0](y)), outs[1])


@pytest.mark.parametrize('arch', sorted(OFFICIAL_PARAMS))
def test_official_key_names_shapes_and_param_counts(arch):
    shapes = official_shapes(ARCH_ZOO[arch])
    assert num_params(shapes) == OFFICIAL_PARAMS[arch]
    with META:
        model = RepLKNetClassifier(arch=arch, norm_intermediate_features=False)
    own = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    assert own == shapes
    assert sum(p.numel() for p in model.parameters()) == OFFICIAL_PARAMS[arch]


def test_xl_intermediate_norms_and_defaults():
    with META:
        model = RepLKNet(arch='XL')
        b = RepLKNet(arch='31B')
    assert all(isinstance(s.norm, _BatchNorm) for s in model.stages)
    assert not hasattr(model.stages[0].blocks[0].large_kernel, 'small_conv')
    assert model.stages[0].blocks[0].pw1.conv.out_channels == 384  # dw_ratio 1.5
    assert all(isinstance(s.norm, torch.nn.Identity) for s in b.stages)
    assert b.stages[2].blocks[0].large_kernel.small_conv.conv.kernel_size == (5, 5)


def test_norm_cfg_reaches_every_norm():
    model = RepLKNet(arch=TINY, norm_cfg=dict(type='SyncBN', requires_grad=True),
                     norm_intermediate_features=True)
    norms = [m for m in model.modules() if isinstance(m, _BatchNorm)]
    assert norms and all(isinstance(m, torch.nn.SyncBatchNorm) for m in norms)
    gn = RepLKNet(arch=TINY, norm_cfg=dict(type='GN', num_groups=4))
    assert not any(isinstance(m, _BatchNorm) for m in gn.modules())


def test_drop_path_rates_follow_the_official_schedule():
    with META:
        model = RepLKNet(arch='31B', drop_path_rate=0.3)
    rates = []
    for stage in model.stages:
        for lk, ffn in zip(stage.blocks[::2], stage.blocks[1::2]):
            r_lk = getattr(lk.drop_path, 'drop_prob', 0.0)
            assert getattr(ffn.drop_path, 'drop_prob', 0.0) == r_lk
            rates.append(r_lk)
    pairs = sum(ARCH_ZOO['31B']['layers'])
    assert rates == pytest.approx(torch.linspace(0, 0.3, pairs).tolist())
    assert isinstance(model.stages[0].blocks[0].drop_path, torch.nn.Identity)


def _train_step(model, x, seed=0):
    torch.manual_seed(seed)
    outs = model(x)
    sum((o * o).mean() for o in outs).backward()
    return {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}


def test_gradient_checkpointing_same_grads_and_bn_updated_once():
    torch.manual_seed(0)
    ref = RepLKNet(arch=TINY, drop_path_rate=0.2).train()
    cp = RepLKNet(arch=TINY, drop_path_rate=0.2, with_cp=True).train()
    cp.load_state_dict(ref.state_dict())
    x = torch.randn(2, 3, 32, 32)
    g_ref, g_cp = _train_step(ref, x), _train_step(cp, x)
    assert g_ref.keys() == g_cp.keys() and len(g_ref) > 0
    for name in g_ref:
        assert torch.allclose(g_ref[name], g_cp[name], rtol=1e-4, atol=1e-6), name
    for (name, a), b in zip(ref.state_dict().items(), cp.state_dict().values()):
        if 'num_batches_tracked' in name:
            assert a.item() == b.item() == 1, name
        elif 'running' in name:
            assert torch.allclose(a, b, atol=1e-6), name


def test_frozen_stages_no_grad_and_eval_mode():
    model = RepLKNet(arch=TINY, frozen_stages=2).train()
    frozen = [model.stem, model.stages[0], model.stages[1], model.transitions[0]]
    trainable = [model.transitions[1], model.stages[2], model.stages[3]]
    _train_step(model, torch.randn(2, 3, 32, 32))
    for module in frozen:
        assert all(not p.requires_grad and p.grad is None for p in module.parameters())
        assert all(not m.training for m in module.modules())
    for module in trainable:
        assert all(p.requires_grad and p.grad is not None for p in module.parameters())
        assert all(m.training for m in module.modules())
    stem_only = RepLKNet(arch=TINY, frozen_stages=0)
    assert not any(p.requires_grad for p in stem_only.stem.parameters())
    assert all(p.requires_grad for p in stem_only.stages[0].parameters())


def test_norm_eval_keeps_bn_in_eval_mode():
    model = RepLKNet(arch=TINY, norm_eval=True).train()
    bns = [m for m in model.modules() if isinstance(m, _BatchNorm)]
    assert bns and not any(m.training for m in bns)
    assert model.stages[0].blocks[0].pw1.conv.training


@pytest.mark.parametrize('kwargs, message', [
    (dict(arch='31X'), "valid archs: ['13', '25', '3', '31B', '31L', '7', 'XL']"),
    (dict(arch=dict(TINY, large_kernel_sizes=[7, 8, 5, 3])), 'positive odd'),
    (dict(arch=dict(TINY, large_kernel_sizes=[7, 0, 5, 3])), 'positive odd'),
    (dict(arch=dict(TINY, large_kernel_sizes=[7, -3, 5, 3])), 'positive odd'),
    (dict(arch=TINY, small_kernel=4), 'small_kernel must be a positive odd'),
    (dict(arch=TINY, small_kernel=5), 'must be smaller than every large kernel'),
    (dict(arch='31B', small_kernel=13), 'must be smaller than every large kernel'),
    (dict(arch=dict(TINY, layers=[1, 1])), 'equal length'),
    (dict(arch=dict(channels=[8]), layers=[1]), 'unexpected keyword'),  # TypeError
    (dict(arch=['31B']), 'arch must be a str or a dict'),
    (dict(arch=dict(layers=[1], channels=[8])), 'missing keys'),
    (dict(arch=TINY, out_indices=(0, 4)), 'out_indices must be ints in [0, 4)'),
    (dict(arch=TINY, frozen_stages=5), 'frozen_stages must be an int in [-1, 4]'),
    (dict(arch=TINY, frozen_stages=-2), 'frozen_stages must be an int in [-1, 4]'),
    (dict(arch=TINY, drop_path_rate=1.5), 'drop_path_rate'),
])
def test_bad_arguments_raise_clear_errors(kwargs, message):
    with pytest.raises((ConfigError, TypeError)) as info:
        RepLKNet(**kwargs)
    assert message in str(info.value)


def test_wrong_input_channels():
    model = RepLKNet(arch=TINY)
    with pytest.raises(ValueError, match=r'expects images of shape \(N, 3, H, W\), '
                       r'got \(1, 4, 32, 32\)'):
        model(torch.randn(1, 4, 32, 32))
    with pytest.raises(ValueError, match='got'):
        model(torch.randn(3, 32, 32))


def test_memory_format_default_on_cpu_and_override():
    torch.manual_seed(0)
    x = torch.randn(2, 3, 48, 48)
    auto = RepLKNet(arch=TINY).eval()
    nchw = RepLKNet(arch=TINY, channels_last=False).eval()
    nchw.load_state_dict(auto.state_dict())
    with torch.no_grad():
        a, b = auto(x), nchw(x)
    assert all(o.is_contiguous(memory_format=torch.channels_last) for o in a)
    assert all(o.is_contiguous() for o in b)
    for o1, o2 in zip(a, b):
        assert torch.allclose(o1, o2, atol=1e-5)
