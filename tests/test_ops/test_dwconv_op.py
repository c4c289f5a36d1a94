"""The fast depthwise conv as PyTorch custom ops: fake kernels, autograd, export, compile."""
import pytest
import torch

from mmreplk.ops import DepthwiseConv2d

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
    graph = torch.jit.trace(model, (x,)).inlined_graph
    return [n.kind() for n in graph.nodes()], None


@pytest.mark.parametrize('record', [_jit_trace, _export(False), _export(True)],
                         ids=['jit.trace', 'export', 'export-strict'])
@pytest.mark.parametrize('impl', [None, 'cpu'])
def test_tracers_record_a_stock_convolution(record, impl):
    """torch.jit.trace (TorchScript ONNX export, FlopAnalyzer, mmdeploy) and torch.export
    (dynamo ONNX export) record aten convolutions, not the custom op; after
    run_decompositions() the core-ATen graph holds aten.convolution."""
    conv = DepthwiseConv2d(4, 4, 13, padding=6, groups=4, impl=impl)
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
    calls = []
    real = OPS.dwconv2d

    def spy(*args):
        calls.append(args[-1])
        return real(*args)

    monkeypatch.setattr(OPS, 'dwconv2d', spy)
    DepthwiseConv2d(4, 4, 13, padding=6, groups=4, impl='cpu')(torch.randn(1, 4, 16, 16))
    assert calls == ['cpu']


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
