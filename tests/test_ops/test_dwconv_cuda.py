"""The Triton paths on CUDA against float64 ``F.conv2d`` (marker ``cuda``; skipped without a GPU).

Imports only torch, pytest and mmreplk.ops, so a torch-only GPU box runs it (without the
suite's conftest, which needs the full stack)::

    python -m pytest -p no:cacheprovider --noconftest -m cuda tests/test_ops/test_dwconv_cuda.py

Kernel sizes are RepLKNet-31B's (31, 29, 27, 13) wherever possible. tools/gpu_check.sh
runs these last, after its measurements, when pytest is importable and time remains.
"""
import importlib.util
from contextlib import contextmanager

import pytest
import torch
import torch.nn.functional as F

from mmreplk.ops import DepthwiseConv2d, depthwise_conv2d, dwconv

pytestmark = [pytest.mark.cuda,
              pytest.mark.skipif(not torch.cuda.is_available(), reason='needs a CUDA device')]

# (N, C, H, W, Kh, Kw): RepLKNet-31B's stages at 224 (batch 2) ...
STAGES = [(2, 128, 56, 56, 31, 31), (2, 256, 28, 28, 29, 29), (2, 512, 14, 14, 27, 27),
          (2, 1024, 7, 7, 13, 13)]
# ... and edges: a rectangular kernel, maps that are not multiples of any tile, a map
# smaller than the kernel (cropped to 27x27), a 1x1 map (kernel cropped to 1x1), C = 1.
EDGES = [(1, 3, 33, 17, 31, 5), (2, 5, 9, 70, 13, 13), (1, 2, 14, 14, 31, 31),
         (3, 1, 1, 1, 13, 13)]
STAGE1_512 = (1, 128, 128, 128, 31, 31)  # RepLKNet-31B's stage 1 at 512, for two paths
# (backend, dtype name, relative tolerance against the float64 maximum): fp32 FMA, 16-bit
# inputs (outputs rounded to 8 / 11 bits), TF32 (inputs rounded to 10 bits).
PATHS = [('triton', 'fp32', 5e-5), ('triton', 'bf16', 1e-2), ('triton_tc', 'bf16', 1e-2),
         ('triton_tc', 'tf32', 5e-3)]
PATHS_FP16 = [('triton', 'fp16', 2e-3), ('triton_tc', 'fp16', 2e-3)]
DTYPES = {'fp32': torch.float32, 'tf32': torch.float32, 'bf16': torch.bfloat16,
          'fp16': torch.float16}
HAS_TC = importlib.util.find_spec('mmreplk.ops.dwconv_triton_tc') is not None


@contextmanager
def _tf32(flag: bool):
    """PyTorch's TF32 flag for convolutions (what routes fp32 to tensor cores)."""
    old = torch.backends.cudnn.allow_tf32
    torch.backends.cudnn.allow_tf32 = flag
    try:
        yield
    finally:
        torch.backends.cudnn.allow_tf32 = old


def _data(shape, dtype, seed=0):
    n, c, h, w, kh, kw = shape
    gen = torch.Generator(device='cuda').manual_seed(seed)

    def randn(*size):
        return torch.randn(*size, device='cuda', generator=gen).to(dtype)

    return randn(n, c, h, w), randn(c, 1, kh, kw), randn(c), randn(n, c, h, w)


def _reference(x, w, b, g):
    """float64 stock output and gradients (x, w, b) for output gradient g."""
    x, w, g = (t.detach().double().requires_grad_() for t in (x, w, g))
    b = b.detach().double().requires_grad_() if b is not None else None
    y = F.conv2d(x, w, b, 1, (w.shape[2] // 2, w.shape[3] // 2), 1, w.shape[0])
    y.backward(g)
    return [y.detach(), x.grad, w.grad] + ([b.grad] if b is not None else [])


def _close(got, ref, rel, what):
    scale = ref.abs().max().item() + 1e-12
    err = (got.double() - ref).abs().max().item()
    assert err <= rel * scale, f'{what}: max error {err:.3g} > {rel} * {scale:.3g}'


def _check_backend(name, dname, rel, shape):
    if name == 'triton_tc' and not HAS_TC:
        pytest.skip('mmreplk.ops.dwconv_triton_tc does not exist in this tree')
    module = dwconv._module(name)
    x, w, _, g = _data(shape, DTYPES[dname])  # no bias: the benchmark's specializations
    w = dwconv.crop_to_map(w, shape[2], shape[3])
    kh, kw = w.shape[-2:]
    with _tf32(dname == 'tf32'):
        got = [module.forward(x, w), module.input_grad(g, w), module.weight_grad(x, g, kh, kw)]
    assert got[0].dtype == got[1].dtype == x.dtype and got[2].shape == (shape[1], 1, kh, kw)
    for a, r, what in zip(got, _reference(x, w, None, g), ('forward', 'input grad', 'weight grad')):
        _close(a, r, rel, f'{name} {dname} {shape} {what}')


@pytest.mark.parametrize('tf32', [False, True])
@pytest.mark.parametrize('dname', ['fp32', 'bf16'])
def test_dispatch_routes_and_differentiates(dname, tf32):
    """impl='auto' on CUDA: the routing rule, autograd for x, weight and bias, channels_last."""
    dtype = DTYPES[dname]
    shape = (2, 64, 40, 36, 31, 31)
    x, w, b, g = _data(shape, dtype)
    x = x.contiguous(memory_format=torch.channels_last)
    tensor_cores = HAS_TC and (dname == 'bf16' or tf32)
    leaves = [t.clone().requires_grad_() for t in (x, w, b)]
    with _tf32(tf32):
        assert dwconv.resolve_impl('auto', x, 31) == ('triton_tc' if tensor_cores else 'triton')
        y = depthwise_conv2d(*leaves, impl='auto')
        y.backward(g)
    assert y.dtype == dtype and y.is_contiguous(memory_format=torch.channels_last)
    rel = 1e-2 if dname == 'bf16' else 5e-3 if tensor_cores else 5e-5
    got = [y] + [t.grad for t in leaves]
    for a, r, what in zip(got, _reference(x, w, b, g), ('y', 'x', 'w', 'b')):
        _close(a, r, rel, what)


@pytest.mark.parametrize('shape', STAGES + EDGES)
@pytest.mark.parametrize('name,dname,rel', PATHS)
def test_backend_matches_float64(name, dname, rel, shape):
    _check_backend(name, dname, rel, shape)


@pytest.mark.parametrize('name,dname,rel', [PATHS[0], PATHS[2]] + PATHS_FP16)
def test_backend_other_cases(name, dname, rel):
    """The 512 stage-1 map for fp32 FMA and bf16 tensor cores; fp16 at stage 1 (224)."""
    _check_backend(name, dname, rel, STAGES[0] if dname == 'fp16' else STAGE1_512)


def test_autocast_bf16_and_small_kernels_and_empty_batch():
    x, w, b, _ = _data((2, 16, 24, 24, 13, 13), torch.float32)
    with torch.autocast('cuda', dtype=torch.bfloat16):
        y = depthwise_conv2d(x, w, b, impl='triton')
    assert y.dtype == torch.bfloat16
    _close(y, _reference(x.bfloat16(), w.bfloat16(), b.bfloat16(), torch.zeros_like(x))[0],
           1e-2, 'autocast')
    w5 = w[..., 4:9, 4:9]  # 5x5: cuDNN through stock PyTorch under 'auto'
    assert torch.equal(depthwise_conv2d(x, w5, impl='auto'), F.conv2d(x, w5, None, 1, 2, 1, 16))
    empty = torch.zeros(0, 16, 24, 24, device='cuda', requires_grad=True)
    wl = w.clone().requires_grad_()
    depthwise_conv2d(empty, wl, impl='triton').sum().backward()
    assert empty.grad.shape == empty.shape and not wl.grad.any()


def test_compile_fullgraph_cuda():
    """torch.compile (inductor) with fullgraph=True: no graph break around the op."""
    torch.manual_seed(0)
    conv = DepthwiseConv2d(32, 32, 31, padding=15, groups=32, bias=False).cuda()
    x, _, _, g = _data((2, 32, 40, 40, 31, 31), torch.float32)
    x.requires_grad_()
    y = torch.compile(conv, fullgraph=True)(x)
    y.backward(g)
    x2 = x.detach().clone().requires_grad_()
    grad_w = conv.weight.grad.clone()
    conv.weight.grad = None
    y2 = conv(x2)
    y2.backward(g)
    torch.testing.assert_close(y, y2)
    torch.testing.assert_close(x.grad, x2.grad)
    torch.testing.assert_close(grad_w, conv.weight.grad)
