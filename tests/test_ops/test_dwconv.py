"""Fast depthwise convolution (mmreplk.ops): numerics, autograd, dispatch and fallbacks."""
import warnings
from functools import partial

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from hypothesis import example, given, settings
from hypothesis import strategies as st

from mmreplk.ops import DepthwiseConv2d, depthwise_conv2d, dwconv, dwconv_cpu

# (N, C, H, W, Kh, Kw): odd square and rectangular kernels 3..31, C=1, batch 1,
# maps smaller than the kernel, non-square maps, and one larger map (66x70, K=17).
SHAPES = [
    (2, 3, 10, 12, 9, 9),
    (1, 1, 5, 7, 13, 13),
    (2, 4, 17, 9, 31, 5),
    (1, 3, 8, 11, 5, 15),
    (3, 2, 6, 6, 3, 3),
    (1, 2, 20, 14, 31, 31),
    (2, 5, 7, 16, 7, 7),
    (1, 2, 66, 70, 17, 17),
    (2, 3, 12, 12, 11, 11),
]


def _reference(x, w, b, g):
    """float64 stock output and gradients (x, w, b) for output gradient g."""
    x, w, g = (t.detach().double().requires_grad_() for t in (x, w, g))
    b = b.detach().double().requires_grad_() if b is not None else None
    y = F.conv2d(x, w, b, 1, (w.shape[2] // 2, w.shape[3] // 2), 1, w.shape[0])
    y.backward(g)
    return y.detach(), x.grad, w.grad, b.grad if b is not None else None


def _run(x, w, b, g, **kw):
    x, w = x.detach().clone().requires_grad_(), w.detach().clone().requires_grad_()
    b = b.detach().clone().requires_grad_() if b is not None else None
    y = depthwise_conv2d(x, w, b, **kw)
    y.backward(g)
    return y.detach(), x.grad, w.grad, b.grad if b is not None else None


def _close(got, ref, rel):
    scale = ref.abs().max().item() + 1e-12
    err = (got.double() - ref).abs().max().item()
    assert err <= rel * scale, f'max error {err:.3g} > {rel} * {scale:.3g}'


def _data(shape, dtype, seed=0, bias=True):
    n, c, h, w, kh, kw = shape
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(n, c, h, w, generator=gen).to(dtype)
    wt = torch.randn(c, 1, kh, kw, generator=gen).to(dtype)
    b = torch.randn(c, generator=gen).to(dtype) if bias else None
    g = torch.randn(n, c, h, w, generator=gen).to(dtype)
    return x, wt, b, g


@pytest.mark.parametrize('shape', SHAPES)
@pytest.mark.parametrize('dtype,rel', [(torch.float32, 2e-5), (torch.bfloat16, 2e-2)])
def test_cpu_matches_float64_reference(shape, dtype, rel):
    x, w, b, g = _data(shape, dtype, bias=shape[0] != 1)
    got = _run(x, w, b, g, impl='cpu')
    ref = _reference(x, w, b, g)
    assert got[0].dtype == dtype and got[1].dtype == dtype and got[2].dtype == dtype
    for a, r in zip(got, ref):
        if r is not None:
            _close(a, r, rel)


@pytest.mark.parametrize('strategy', dwconv_cpu.STRATEGIES)
@pytest.mark.parametrize('shape', [(2, 3, 9, 13, 15, 7), (1, 2, 4, 5, 11, 11)])
def test_cpu_strategies_and_weight_grad(strategy, shape):
    x, w, _, g = _data(shape, torch.float32, bias=False)
    ref_y, _, ref_gw, _ = _reference(x, w, None, g)
    _close(dwconv_cpu.conv_same(x, w, strategy), ref_y, 2e-5)
    _close(dwconv_cpu.weight_grad(x, g, *shape[4:]), ref_gw, 2e-5)


@pytest.mark.parametrize('chunk, channels_last', [(2000, False), (300, True), (1 << 22, True)])
def test_cpu_weight_grad_in_chunks_of_planes(monkeypatch, chunk, channels_last):
    """The weight gradient's GEMMs in chunks (one plane, a few, the whole batch), on a
    channels_last input too, give the float64 result; blocks of rows cover maps of 1 to 3
    blocks and kernels taller than the map (small maps included: stock is switched off)."""
    monkeypatch.setattr(dwconv_cpu, 'WGRAD_CHUNK_ELEMENTS', chunk)
    monkeypatch.setattr(dwconv_cpu, 'WGRAD_STOCK_MAX_PIXELS', 0)
    for shape in [(2, 5, 37, 9, 31, 5), (3, 2, 5, 6, 13, 9), (1, 3, 16, 16, 9, 9)]:
        x, w, _, g = _data(shape, torch.float32, bias=False)
        if channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        _close(dwconv_cpu.weight_grad(x, g, *shape[4:]), _reference(x, w, None, g)[2], 2e-5)


def test_cpu_unknown_strategy_raises():
    x, w, _, _ = _data((1, 1, 4, 4, 3, 3), torch.float32)
    with pytest.raises(ValueError, match='nchw'):
        dwconv_cpu.conv_same(x, w, 'winograd')


@pytest.mark.parametrize('layout', ['channels_last', 'strided'])
def test_cpu_layouts(layout):
    x, w, b, g = _data((2, 4, 12, 10, 13, 13), torch.float32)
    if layout == 'channels_last':
        x = x.contiguous(memory_format=torch.channels_last)
        g = g.contiguous(memory_format=torch.channels_last)
    else:
        x = torch.randn(2, 10, 4, 24).permute(0, 2, 3, 1)[..., ::2, :]  # non-contiguous
        g = g.transpose(2, 3).contiguous().transpose(2, 3)
    got = _run(x, w, b, g, impl='cpu')
    if layout == 'channels_last':
        assert got[0].is_contiguous(memory_format=torch.channels_last)
        assert got[1].is_contiguous(memory_format=torch.channels_last)
    for a, r in zip(got, _reference(x, w, b, g)):
        _close(a, r, 2e-5)


# A map on which an FFT used to run (K >= 17, >= 64x64); defects sit near a corner, so a
# direct convolution confines them to a 19x19 window (361 outputs or weight taps).
FAITHFUL = (1, 2, 64, 64, 31, 31)


def _assert_same_non_finite(got, ref):
    got = got.double()
    assert torch.equal(got.isnan(), ref.isnan()), (got.isnan().sum(), ref.isnan().sum())
    assert torch.equal(got.isinf(), ref.isinf()), (got.isinf().sum(), ref.isinf().sum())
    assert torch.equal(got[got.isinf()], ref[ref.isinf()])
    finite = ref.isfinite()
    _close(got[finite], ref[finite], 2e-5)


@pytest.mark.parametrize('value', [float('nan'), float('inf')])
def test_cpu_non_finite_values_stay_in_their_window(value):
    """One NaN/Inf in the input reaches the outputs and weight taps it reaches in F.conv2d;
    one in the output gradient reaches the same input-gradient positions."""
    x, w, _, g = _data(FAITHFUL, torch.float32, bias=False)
    xd, gd = x.clone(), g.clone()
    xd[0, 0, 3, 3] = value
    gd[0, 1, 3, 3] = value
    y, _, gw, _ = _run(xd, w, None, g, impl='cpu')
    ref_y, _, ref_gw, _ = _reference(xd, w, None, g)
    assert ref_y.isfinite().sum() == ref_y.numel() - 361
    _assert_same_non_finite(y, ref_y)
    _assert_same_non_finite(gw, ref_gw)
    _assert_same_non_finite(_run(x, w, None, gd, impl='cpu')[1], _reference(x, w, None, gd)[1])


def _image_only_reference(x, w, b, g):
    """float64 output and gradients of the 'same' depthwise conv in which only pixels inside
    the image enter a sum (zero padding contributes no term), one tap at a time."""
    x, w, b, g = (t.double() for t in (x, w, b, g))
    (n, c, h, wd), (kh, kw) = x.shape, w.shape[-2:]
    y, gx = b.view(1, c, 1, 1).expand_as(x).clone(), torch.zeros_like(x)
    gw = torch.zeros_like(w)
    for i in range(kh):
        for j in range(kw):
            dy, dx = i - kh // 2, j - kw // 2
            p0, p1, q0, q1 = max(0, -dy), min(h, h - dy), max(0, -dx), min(wd, wd - dx)
            if p0 >= p1 or q0 >= q1:
                continue
            out = (Ellipsis, slice(p0, p1), slice(q0, q1))
            inp = (Ellipsis, slice(p0 + dy, p1 + dy), slice(q0 + dx, q1 + dx))
            tap = w[:, 0, i, j].view(1, c, 1, 1)
            y[out] += x[inp] * tap
            gx[inp] += g[out] * tap
            gw[:, 0, i, j] = (x[inp] * g[out]).sum((0, 2, 3))
    return y, gx, gw, g.sum((0, 2, 3))


SPECIALS = [float('nan'), float('inf'), -float('inf'), 0.]


@settings(max_examples=12, deadline=None)
@example(batch=(1, 3), kernel=(9, 11), extra=(0, 0), defects=[(1, 0., float('nan'))])
@example(batch=(2, 1), kernel=(21, 17), extra=(6, 6), defects=[(2, 0., float('inf'))])
@given(batch=st.tuples(st.integers(1, 2), st.integers(1, 3)),
       kernel=st.tuples(st.sampled_from([9, 13, 21]), st.sampled_from([9, 11, 17])),
       extra=st.tuples(st.integers(0, 6), st.integers(0, 6)),
       defects=st.lists(st.tuples(st.integers(0, 2), st.floats(0, 1, exclude_max=True),
                                  st.sampled_from(SPECIALS)), min_size=1, max_size=4))
def test_cpu_non_finite_values_reach_exactly_their_sums(batch, kernel, extra, defects):
    """NaN, +-Inf and zeros anywhere in the input, weight or output gradient: the CPU path's
    output and gradients are NaN / +-Inf exactly where a sum over the pixels inside the
    image is (docs/dwconv.md, "Scope and semantics"); the rest equals that sum. Maps of
    K - 1 pixels or more per side (oneDNN's direct kernels; on smaller ones it multiplies
    the padding too)."""
    shape = (*batch, kernel[0] - 1 + extra[0], kernel[1] - 1 + extra[1], *kernel)
    x, w, b, g = _data(shape, torch.float32, seed=len(defects))
    for which, where, value in defects:
        t = (x, w, g)[which].view(-1)
        t[int(where * t.numel())] = value
    got = _run(x, w, b, g, impl='cpu')
    magnitudes = _image_only_reference(x.abs(), w.abs(), b.abs(), g.abs())
    for a, r, m in zip(got, _image_only_reference(x, w, b, g), magnitudes):
        a = a.double()
        assert torch.equal(a.isnan(), r.isnan()), (a.isnan().sum(), r.isnan().sum())
        assert torch.equal(a.isinf(), r.isinf()) and torch.equal(a[a.isinf()], r[r.isinf()])
        finite = r.isfinite()  # all terms finite: error within 2e-5 of their magnitudes
        assert ((a - r).abs()[finite] <= 2e-5 * m[finite] + 1e-30).all()


def test_cpu_error_stays_local_near_a_large_spike():
    """A 1e5 spike in 1e-3 data (input and output gradient): every output and gradient is
    within 1e-4 of the sum of its terms' magnitudes of float64 (a direct convolution's
    bound; an FFT's error spreads the spike's rounding over the whole plane)."""
    x, w, _, g = _data(FAITHFUL, torch.float32, bias=False)
    x, g = x * 1e-3, g * 1e-3
    x[0, 0, 3, 3] = g[0, 1, 40, 20] = 1e5
    got = _run(x, w, None, g, impl='cpu')[:3]
    ref = _reference(x, w, None, g)[:3]
    scale = _reference(x.abs(), w.abs(), None, g.abs())[:3]  # |x|*|w|, |g|*|w|, |x|*|g|
    for a, r, s in zip(got, ref, scale):
        err = (a.double() - r).abs()
        assert (err <= 1e-4 * s).all(), (err / s).max()


@pytest.mark.parametrize('impl', ['auto', 'torch', 'cpu'])
def test_empty_batch(impl):
    x, w, b, _ = _data((0, 3, 64, 64, 31, 31), torch.float32)
    got = _run(x, w, b, torch.zeros_like(x), impl=impl)
    ref = _run(x, w, b, torch.zeros_like(x), impl='torch')
    assert got[0].shape == x.shape and got[1].shape == x.shape
    for a, r in zip(got, ref):
        assert torch.equal(a, r)
    assert torch.equal(dwconv_cpu.weight_grad(x, x, 31, 31), torch.zeros(3, 1, 31, 31))
    with pytest.raises(RuntimeError, match='Kernel size'):  # as F.conv2d: an empty map
        depthwise_conv2d(torch.randn(1, 3, 0, 8), w, impl=impl)


def test_cpu_autocast_bf16():
    x, w, b, _ = _data((2, 3, 16, 16, 15, 15), torch.float32)
    with torch.autocast('cpu', dtype=torch.bfloat16):
        y = depthwise_conv2d(x, w, b, impl='cpu')
    assert y.dtype == torch.bfloat16
    ref = _reference(x.bfloat16(), w.bfloat16(), b.bfloat16(), torch.zeros_like(x))[0]
    _close(y, ref, 1e-2)


def test_stock_impl_is_f_conv2d():
    x, w, b, _ = _data((2, 3, 9, 9, 7, 7), torch.float32)
    assert torch.equal(depthwise_conv2d(x, w, b, impl='torch'), F.conv2d(x, w, b, 1, 3, 1, 3))


@pytest.mark.parametrize('kwargs', [
    dict(kernel_size=5, stride=2, padding=2, groups=4),
    dict(kernel_size=4, padding=2, groups=4),
    dict(kernel_size=5, padding=2, groups=2),
    dict(kernel_size=5, padding=1, groups=4),
    dict(kernel_size=13, padding=6, groups=4, dilation=2),
    dict(kernel_size=13, padding=6, groups=4, padding_mode='reflect'),
])
def test_module_out_of_scope_falls_back(kwargs):
    torch.manual_seed(0)
    fast = DepthwiseConv2d(4, 4, impl='cpu', **kwargs)
    stock = nn.Conv2d(4, 4, **kwargs)
    stock.load_state_dict(fast.state_dict())
    assert not fast.uses_fast_path()
    x = torch.randn(2, 4, 15, 15, requires_grad=True)
    y = fast(x)
    y.sum().backward()
    x2 = x.detach().clone().requires_grad_()
    y2 = stock(x2)
    y2.sum().backward()
    assert torch.equal(y, y2) and torch.equal(x.grad, x2.grad)


def test_function_out_of_scope_falls_back():
    x = torch.randn(1, 4, 9, 9)
    w = torch.randn(4, 1, 4, 4)  # even kernel
    assert torch.equal(depthwise_conv2d(x, w, impl='cpu'), F.conv2d(x, w, None, 1, 2, 1, 4))


def test_module_state_dict_compatible_and_fast():
    torch.manual_seed(0)
    stock = nn.Conv2d(6, 6, (31, 5), padding=(15, 2), groups=6)
    fast = DepthwiseConv2d(6, 6, (31, 5), padding=(15, 2), groups=6, impl='cpu')
    fast.load_state_dict(stock.state_dict())
    assert fast.uses_fast_path()
    assert set(fast.state_dict()) == {'weight', 'bias'}
    x = torch.randn(2, 6, 20, 11)
    torch.testing.assert_close(fast(x), stock(x), rtol=1e-5, atol=1e-4)
    assert "impl='cpu'" in repr(fast)


def test_invalid_impl_values(monkeypatch):
    x, w, _, _ = _data((1, 2, 5, 5, 3, 3), torch.float32)
    with pytest.raises(ValueError, match='auto, torch, triton, cpu'):
        depthwise_conv2d(x, w, impl='cuda')
    with pytest.raises(ValueError, match='auto, torch, triton, cpu'):
        DepthwiseConv2d(2, 2, 3, padding=1, groups=2, impl='fast')
    monkeypatch.setenv('MMREPLK_DWCONV', 'bogus')
    with pytest.raises(ValueError, match='MMREPLK_DWCONV'):
        depthwise_conv2d(x, w)
    monkeypatch.setenv('MMREPLK_DWCONV', 'torch')
    assert torch.equal(depthwise_conv2d(x, w), F.conv2d(x, w, None, 1, 1, 1, 2))


def test_explicit_triton_without_cuda_raises(monkeypatch):
    x, w, _, _ = _data((1, 2, 5, 5, 3, 3), torch.float32)
    monkeypatch.delenv('TRITON_INTERPRET', raising=False)
    with pytest.raises(RuntimeError, match='triton'):
        depthwise_conv2d(x, w, impl='triton')
    monkeypatch.setattr(dwconv, 'triton_available', lambda: False)
    with pytest.raises(RuntimeError, match='not installed'):
        depthwise_conv2d(x, w, impl='triton')
    assert dwconv.resolve_impl('auto', x) == 'cpu'


def test_select_backend_rule():
    """Tensor cores for bf16/fp16, and for fp32 when PyTorch's convolutions may use TF32;
    CUDA-core Triton otherwise; stock for small kernels on CUDA and CPU, or no Triton."""
    pick = partial(dwconv.select_backend, triton=True, tensor_cores=True, allow_tf32=True)
    assert pick('auto', 'cuda', torch.bfloat16, 31) == 'triton_tc'
    assert pick('triton', 'cuda', torch.float16, 5) == 'triton_tc'
    assert pick('auto', 'cuda', torch.float32, 13) == 'triton_tc'
    assert pick('auto', 'cuda', torch.float32, 13, allow_tf32=False) == 'triton'
    assert pick('auto', 'cuda', torch.bfloat16, 13, allow_tf32=False) == 'triton_tc'
    assert pick('auto', 'cuda', torch.bfloat16, 31, tensor_cores=False) == 'triton'
    assert pick('triton', 'cpu', torch.bfloat16, 31, interpret=True) == 'triton'
    assert pick('auto', 'cuda', torch.float32, 5) == 'torch'
    assert pick('auto', 'cuda', torch.float32, 31, triton=False) == 'torch'
    assert pick('torch', 'cuda', torch.bfloat16, 31) == 'torch'
    assert pick('auto', 'cpu', torch.float32, 9) == 'cpu'
    assert pick('cpu', 'cpu', torch.float32, 7) == 'torch'
    assert pick('auto', 'mps', torch.float32, 31) == 'torch'
    with pytest.raises(RuntimeError, match="impl='cpu' needs a CPU tensor"):
        pick('cpu', 'cuda', torch.float32, 31)
    with pytest.raises(RuntimeError, match="impl='triton' needs a CUDA tensor"):
        pick('triton', 'cpu', torch.float32, 31)


def test_tf32_rule_follows_pytorch_flags():
    assert dwconv.conv_allows_tf32()  # PyTorch's default for convolutions
    try:
        torch.backends.cudnn.allow_tf32 = False
        assert not dwconv.conv_allows_tf32()
    finally:
        torch.backends.cudnn.allow_tf32 = True


class _BrokenTriton:
    """A Triton backend whose every kernel fails as a compile error would."""
    calls = 0

    @classmethod
    def _fail(cls, *args):
        cls.calls += 1
        raise RuntimeError('PassManager::run failed (simulated)')

    forward = input_grad = weight_grad = _fail


@pytest.fixture
def broken_triton(monkeypatch):
    """CPU tensors dispatched as CUDA tensors to :class:`_BrokenTriton`."""
    monkeypatch.setattr(dwconv, '_device_type', lambda t: 'cuda')
    monkeypatch.setattr(dwconv, 'triton_available', lambda: True)
    monkeypatch.setattr(dwconv, '_tensor_cores', lambda kh, kw: False)
    monkeypatch.setattr(dwconv, '_module', lambda name: _BrokenTriton)
    monkeypatch.setattr(dwconv, '_FAILED', set())
    _BrokenTriton.calls = 0


def test_auto_falls_back_to_stock_when_triton_fails(broken_triton):
    """Under 'auto', each failing pass warns once, naming the error, and F.conv2d runs that
    case from then on; an explicit impl='triton' raises the error."""
    x, w, b, g = _data((2, 3, 12, 12, 9, 9), torch.float32)
    with pytest.warns(RuntimeWarning) as record:
        got = _run(x, w, b, g, impl='auto')
    messages = [str(r.message) for r in record]
    assert len(messages) == 3 and _BrokenTriton.calls == 3
    assert all('RuntimeError: PassManager::run failed (simulated)' in m
               and 'F.conv2d' in m for m in messages)
    assert torch.equal(got[0], F.conv2d(x, w, b, 1, 4, 1, 3))
    for a, r in zip(got, _reference(x, w, b, g)):
        _close(a, r, 2e-5)
    with warnings.catch_warnings():
        warnings.simplefilter('error')
        _run(x, w, b, g, impl='auto')
    assert _BrokenTriton.calls == 3
    with pytest.raises(RuntimeError, match='simulated'):
        depthwise_conv2d(x, w, b, impl='triton')


@pytest.mark.parametrize('avx512, shape, strategy', [
    (True, (8, 1024, 7, 7, 13, 13), 'nchw'),   # RepLKNet-31B stage 4 @224
    (True, (2, 1024, 16, 16, 13, 13), 'nchw'),  # stage 4 @512
    (False, (8, 1024, 7, 7, 13, 13), 'cl'),   # no AVX-512 NCHW kernel: 20x slower there
    (False, (2, 1024, 16, 16, 13, 13), 'cl'),
    (True, (2, 512, 32, 32, 27, 27), 'cl'),   # im2col in NCHW on larger maps
    (False, (2, 128, 8, 8, 5, 5), 'nchw'),    # small kernels: stock
])
def test_cpu_strategy_rule_follows_the_isa(avx512, shape, strategy):
    assert dwconv_cpu.choose_strategy(*shape, small_maps_nchw=avx512) == strategy
