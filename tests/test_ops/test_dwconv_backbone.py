"""RepLKNet with the fast depthwise conv equals RepLKNet with stock convs (CPU path)."""
import torch

from mmreplk.models import RepLKNet

ARCH = dict(layers=[1, 1, 1, 1], channels=[8, 8, 8, 8], large_kernel_sizes=[13, 11, 9, 7],
            small_kernel=5, dw_ratio=1)


def _pair():
    torch.manual_seed(0)
    stock = RepLKNet(arch=ARCH, dwconv_impl='torch')
    for m in stock.modules():
        if isinstance(m, torch.nn.BatchNorm2d):  # random statistics and affine parameters
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 2.0)
            m.weight.data.uniform_(0.5, 1.5)
            m.bias.data.uniform_(-0.5, 0.5)
    fast = RepLKNet(arch=ARCH, dwconv_impl='cpu')
    fast.load_state_dict(stock.state_dict())
    return stock, fast


def _outputs_and_grads(model, x):
    x = x.clone().requires_grad_()
    outs = model(x)
    sum((o * torch.linspace(-1, 1, o.numel()).view_as(o)).sum() for o in outs).backward()
    grads = {n: p.grad for n, p in model.named_parameters() if p.grad is not None}
    return [o.detach() for o in outs], x.grad, grads


def _assert_same(a, b):
    outs_a, gx_a, gp_a = a
    outs_b, gx_b, gp_b = b
    for oa, ob in zip(outs_a, outs_b):
        torch.testing.assert_close(oa, ob, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(gx_a, gx_b, rtol=1e-4, atol=1e-5)
    assert gp_a.keys() == gp_b.keys() and gp_a
    for name in gp_a:  # float32 sums in another order: error relative to the largest entry
        scale = max(gp_a[name].abs().max().item(), 1.0)
        torch.testing.assert_close(gp_a[name], gp_b[name], rtol=1e-3, atol=1e-4 * scale,
                                   msg=name)


def test_backbone_fast_equals_stock_training_form():
    stock, fast = _pair()
    x = torch.randn(2, 3, 64, 64)
    _assert_same(_outputs_and_grads(stock.train(), x), _outputs_and_grads(fast.train(), x))


def test_backbone_fast_equals_stock_deploy_form():
    stock, fast = _pair()
    stock.eval().switch_to_deploy()
    fast.eval().switch_to_deploy()
    reparam = [m for n, m in fast.named_modules() if n.endswith('lkb_reparam')]
    assert reparam and all(m.impl == 'cpu' and m.uses_fast_path() for m in reparam)
    x = torch.randn(2, 3, 64, 64)
    _assert_same(_outputs_and_grads(stock, x), _outputs_and_grads(fast, x))


def test_backbone_empty_batch():
    """RepLKNet-31B's kernels on a 256x256 input with batch 0 (the first stage's 64x64 map
    once took an FFT path that crashed on empty batches)."""
    torch.manual_seed(0)
    model = RepLKNet(arch=dict(ARCH, large_kernel_sizes=[31, 29, 27, 13]), dwconv_impl='cpu')
    with torch.no_grad():
        outs = model.eval()(torch.zeros(0, 3, 256, 256))
    assert [tuple(o.shape) for o in outs] == [(0, 8, 64 // 2**i, 64 // 2**i) for i in range(4)]
