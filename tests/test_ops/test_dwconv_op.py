"""The fast depthwise conv as PyTorch custom ops: fake kernels, autograd, export, compile."""
import warnings

import pytest
import torch
import torch.nn.functional as F
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from mmreplk.errors import ConfigError
from mmreplk.ops import DepthwiseConv2d, depthwise_conv2d

OPS = torch.ops.mmreplk


def _tensors(shape=(2, 4, 12, 10), k=(9, 7), channels_last=False):
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(shape, generator=gen)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    w = torch.randn(shape[1], 1, *k, generator=gen)
    b = torch.randn(shape[1], generator=gen)
    g = torch.randn(shape, generator=gen)
    return x, w, b, g


def test_opcheck_forward_and_backward_ops():
    """torch.library.opcheck: schema, fake (meta) kernels incl. output memory format,
    autograd registration and AOT dispatch with dynamic shapes."""
    x, w, b, g = _tensors(channels_last=True)
    x.requires_grad_(), w.requires_grad_(), b.requires_grad_()
    torch.library.opcheck(OPS.dwconv2d.default, (x, w, b, 'cpu'))
    fast = ('test_schema', 'test_faketensor')
    torch.library.opcheck(OPS.dwconv2d.default, (x.detach(), w.detach(), None, 'auto'),
                          test_utils=fast)
    torch.library.opcheck(OPS.dwconv2d_input_grad.default, (g, w.detach(), 'cpu'),
                          test_utils=fast)
    torch.library.opcheck(OPS.dwconv2d_weight_grad.default, (x.detach(), g, 9, 7, 'cpu'),
                          test_utils=fast)


@pytest.mark.parametrize('channels_last', [False, True])
def test_fake_kernel_matches_real_output(channels_last):
    from torch._subclasses.fake_tensor import FakeTensorMode
    x, w, b, g = _tensors(channels_last=channels_last)
    real = OPS.dwconv2d(x, w, b, 'cpu')
    with FakeTensorMode() as mode:
        fx, fw, fb = (mode.from_tensor(t) for t in (x, w, b))
        fake = OPS.dwconv2d(fx, fw, fb, 'cpu')
        fake_gw = OPS.dwconv2d_weight_grad(fx, mode.from_tensor(g), 9, 7, 'cpu')
    assert fake.shape == real.shape and fake.dtype == real.dtype
    assert fake.stride() == real.stride()
    assert fake.is_contiguous(memory_format=torch.channels_last) == channels_last
    assert fake_gw.shape == (4, 1, 9, 7)


def _call_targets(graph):
    return [str(n.target) for n in graph.nodes if n.op == 'call_function']


def _export(strict):
    def record(model, x):
        ep = torch.export.export(model, (x,), strict=strict)
        return _call_targets(ep.graph), _call_targets(ep.run_decompositions().graph)
    return record


def _jit_trace(model, x):
    with warnings.catch_warnings():  # no TracerWarning from the op's argument checks
        warnings.simplefilter('error', torch.jit.TracerWarning)
        graph = torch.jit.trace(model, (x,)).inlined_graph
    return [n.kind() for n in graph.nodes()], None


@pytest.mark.parametrize('record', [_jit_trace, _export(False), _export(True)],
                         ids=['jit.trace', 'export', 'export-strict'])
def test_tracers_record_a_stock_convolution(record):
    """torch.jit.trace (TorchScript ONNX export, FlopAnalyzer, mmdeploy) and torch.export
    (dynamo ONNX export) record aten convolutions, not the custom op that the default
    impl calls in eager mode (a 13x13 kernel on CPU); after run_decompositions() the
    core-ATen graph holds aten.convolution."""
    conv = DepthwiseConv2d(4, 4, 13, padding=6, groups=4)
    x = torch.randn(1, 4, 16, 16)
    targets, decomposed = record(conv, x)
    assert not [t for t in targets if 'mmreplk' in t]
    assert [t for t in targets if 'conv' in t] in (
        ['aten::_convolution'], ['aten.conv2d.default'])
    if decomposed is not None:
        assert [t for t in decomposed if 'conv' in t] == ['aten.convolution.default']
    torch.testing.assert_close(torch.export.export(conv, (x,)).module()(x), conv(x))


def test_op_is_called_in_eager_mode(monkeypatch):
    """Outside tracers the fast path runs: the custom op is called (the tracer test above
    fails if lowers_to_stock is always true, this one if it is never false)."""
    monkeypatch.delenv('MMREPLK_DWCONV', raising=False)
    calls = []
    real = OPS.dwconv2d

    def spy(*args):
        calls.append(args[-1])
        return real(*args)

    monkeypatch.setattr(OPS, 'dwconv2d', spy)
    DepthwiseConv2d(4, 4, 13, padding=6, groups=4)(torch.randn(1, 4, 16, 16))
    assert calls == ['auto']


def test_compile_fullgraph_matches_eager():
    """Inductor on CPU, fullgraph=True (a graph break raises), forward and backward. No
    bias and an external output gradient keep inductor from generating C++ (seconds)."""
    torch.manual_seed(0)
    net = torch.nn.Sequential(
        DepthwiseConv2d(4, 4, 13, padding=6, groups=4, bias=False, impl='cpu'),
        DepthwiseConv2d(4, 4, (9, 5), padding=(4, 2), groups=4, bias=False))
    x, _, _, g = _tensors((2, 4, 16, 16))
    x.requires_grad_()
    y = torch.compile(net, fullgraph=True)(x)
    y.backward(g)
    got = [y.detach(), x.grad] + [p.grad for p in net.parameters()]
    net.zero_grad()
    x2 = x.detach().clone().requires_grad_()
    y2 = net(x2)
    y2.backward(g)
    for a, b in zip(got, [y2.detach(), x2.grad] + [p.grad for p in net.parameters()]):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)


# ----------------------------------------------------------------- argument scope
@settings(max_examples=25, deadline=None)
@given(c=st.integers(1, 4), rows=st.integers(1, 8), per_group=st.integers(1, 3),
       impl=st.sampled_from(['auto', 'torch', 'cpu', 'op']))
def test_weights_that_are_not_depthwise_are_refused(c, rows, per_group, impl):
    """A weight other than (C, 1, Kh, Kw) would make F.conv2d a grouped convolution with
    other output channels: every entry point refuses it in one line naming the shapes."""
    assume((rows, per_group) != (c, 1))
    x, w = torch.randn(1, c, 8, 8), torch.randn(rows, per_group, 5, 5)
    with pytest.raises(ConfigError, match=r'weight must be \(C, 1, Kh, Kw\) with C = '
                       rf'{c} input channels, got shape \({rows}, {per_group}, 5, 5\)'):
        OPS.dwconv2d(x, w, None, 'auto') if impl == 'op' else depthwise_conv2d(x, w, impl=impl)


@pytest.mark.parametrize('x_shape, w_shape, b_shape, message', [
    ((4, 8, 8), (4, 1, 5, 5), None, r'input must be \(N, C, H, W\), got shape \(4, 8, 8\)'),
    ((1, 4, 8, 8), (4, 1, 5), None, r'got shape \(4, 1, 5\)'),
    ((1, 4, 8, 8), (4, 1, 5, 5), (3, ), r'bias must be \(4,\), got shape \(3,\)'),
])
def test_other_bad_shapes_are_refused(x_shape, w_shape, b_shape, message):
    b = torch.randn(b_shape) if b_shape else None
    for call in (lambda *a: depthwise_conv2d(*a, impl='cpu'),
                 lambda *a: OPS.dwconv2d(*a, 'cpu')):
        with pytest.raises(ConfigError, match=message):
            call(torch.randn(x_shape), torch.randn(w_shape), b)


def test_ops_refuse_even_kernels_mixed_dtypes_and_other_shapes():
    x = torch.randn(1, 2, 8, 8)
    with pytest.raises(ConfigError, match='odd in both axes, got 9x4'):
        OPS.dwconv2d(x, torch.randn(2, 1, 9, 4), None, 'cpu')
    with pytest.raises(ConfigError, match='weight is torch.float64'):
        OPS.dwconv2d(x, torch.randn(2, 1, 9, 9, dtype=torch.float64), None, 'cpu')
    with pytest.raises(ConfigError, match=r'got shape \(2, 2, 9, 9\)'):
        OPS.dwconv2d_input_grad(x, torch.randn(2, 2, 9, 9), 'cpu')
    with pytest.raises(ConfigError, match=r'\(1, 2, 8, 8\), \(1, 2, 8, 7\), 9x9'):
        OPS.dwconv2d_weight_grad(x, x[..., :7], 9, 9, 'cpu')


def test_module_takes_unbatched_input_as_nn_conv2d():
    conv = DepthwiseConv2d(4, 4, 13, padding=6, groups=4, impl='cpu')
    x = torch.randn(4, 10, 10)
    torch.testing.assert_close(conv(x), torch.nn.Conv2d.forward(conv, x))


@pytest.mark.parametrize('impl', ['auto', 'cpu'])
def test_float64_is_computed_in_float64_on_every_entry_point(impl):
    """float64 runs stock F.conv2d in float64 through the function and the three ops
    (their fp32 kernels would lose ~1e-7 relative precision)."""
    x, w, b, g = (t.double() for t in _tensors(k=(15, 11)))
    ref = F.conv2d(x, w, b, 1, (7, 5), 1, 4)
    ref_gx = torch.nn.grad.conv2d_input(x.shape, w, g, 1, (7, 5), 1, 4)
    ref_gw = torch.nn.grad.conv2d_weight(x, w.shape, g, 1, (7, 5), 1, 4)
    for got, expected in [(depthwise_conv2d(x, w, b, impl=impl), ref),
                          (OPS.dwconv2d(x, w, b, impl), ref),
                          (OPS.dwconv2d_input_grad(g, w, impl), ref_gx),
                          (OPS.dwconv2d_weight_grad(x, g, 15, 11, impl), ref_gw)]:
        assert got.dtype == torch.float64
        torch.testing.assert_close(got, expected, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize('autocast', [False, True])
def test_meta_tensors_with_and_without_autocast(autocast):
    x = torch.empty(2, 4, 16, 16, device='meta')
    w = torch.empty(4, 1, 13, 13, device='meta')
    with torch.autocast('cpu', dtype=torch.bfloat16, enabled=autocast):
        y = depthwise_conv2d(x, w)
    assert y.device.type == 'meta' and y.shape == x.shape and y.dtype == torch.float32


def test_export_with_dynamic_batch_and_size():
    """torch.export with free N, H and W; the program runs at other sizes, as eager."""
    from torch.export import Dim
    conv = DepthwiseConv2d(4, 4, (13, 9), padding=(6, 4), groups=4, impl='cpu')
    dims = {0: Dim('n'), 2: Dim('h', min=2, max=4096), 3: Dim('w', min=2, max=4096)}
    ep = torch.export.export(conv, (torch.randn(2, 4, 16, 16),), dynamic_shapes=(dims,))
    for shape in [(1, 4, 5, 40), (3, 4, 33, 7)]:
        x = torch.randn(shape)
        torch.testing.assert_close(ep.module()(x), conv(x), rtol=1e-5, atol=1e-5)
