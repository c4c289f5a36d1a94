"""The Triton CUDA-core kernels (mmreplk.ops.dwconv_triton) in Triton's interpreter, in this
process, against a float64 F.conv2d: the code paths of the register-window kernels (halo
past both edges, maps smaller than the kernel, partial row / column tiles, programs with
missing planes, rectangular kernels, vector widths 1 / 2 / 4, each dtype), with the
interpreter's config and with real configs of the tuning spaces; then the dispatch
(``impl='triton'`` on CPU tensors) through autograd with bias."""
import os
import subprocess
import sys
import textwrap

import pytest
import torch
import torch.nn.functional as F

pytest.importorskip('triton')

from mmreplk.ops import depthwise_conv2d, dwconv_triton as m  # noqa: E402

DTYPES = {'fp32': torch.float32, 'bf16': torch.bfloat16, 'fp16': torch.float16}
REL = {'fp32': 2e-5, 'bf16': 1e-2, 'fp16': 1e-2}  # of max |reference|


@pytest.fixture
def interpret(monkeypatch):
    """Triton's interpreter for the kernels launched in this test (read at call time)."""
    monkeypatch.setenv('TRITON_INTERPRET', '1')


def reference(x, w, b, g):
    """float64 output and gradients (x, w[, b]) of F.conv2d for output gradient g."""
    x, w, g = (t.detach().double().requires_grad_() for t in (x, w, g))
    b = b.detach().double().requires_grad_() if b is not None else None
    y = F.conv2d(x, w, b, 1, (w.shape[2] // 2, w.shape[3] // 2), 1, w.shape[0])
    y.backward(g)
    return [y.detach(), x.grad, w.grad] + ([b.grad] if b is not None else [])


def close(got, ref, rel, what):
    err = (got.double() - ref).abs().max().item()
    assert err <= rel * ref.abs().max().item(), f'{what}: max error {err:.3g}'


def data(shape, dname, bias, channels_last, seed=0):
    n, c, h, w, kh, kw = shape
    gen = torch.Generator().manual_seed(seed)
    dt = DTYPES[dname]
    x, g = (torch.randn(n, c, h, w, generator=gen).to(dt) for _ in range(2))
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    wt = torch.randn(c, 1, kh, kw, generator=gen).to(dt)
    b = torch.randn(c, generator=gen).to(dt) if bias else None
    return x, wt, b, g


# name: (N, C, H, W, Kh, Kw), dtype, bias, channels_last, forward config, wgrad config
# (None: the public functions, i.e. the interpreter's config)
KERNEL_CASES = {
    'planes-vec2-rect': ((3, 1, 5, 6, 5, 3), 'fp32', True, False, None, None),
    'map-smaller-than-kernel-vec1': ((1, 1, 3, 5, 7, 7), 'fp32', False, False, None, None),
    'bf16-vec4': ((1, 1, 4, 8, 5, 5), 'bf16', True, False, None, None),
    'fp16-channels-last': ((1, 2, 3, 4, 3, 3), 'fp16', False, True, None, None),
    'cfg-16-planes': ((2, 1, 5, 16, 3, 5), 'fp32', True, False, (2, 8, 16, 1, 1),
                      (2, 8, 16, 1, 16, 1)),
    'cfg-8-planes-partial-tile': ((1, 1, 6, 13, 3, 5), 'fp32', False, False, (4, 4, 8, 1, 1),
                                  (2, 8, 8, 1, 32, 1)),
    # row bands (batch 1-2): bands past the map's last row, two images x 4 bands
    'cfg-bands-one-image': ((1, 1, 9, 16, 5, 3), 'fp32', True, False, (2, 4, 8, 1, 8),
                            (2, 8, 8, 1, 4, 8)),
    'cfg-bands-two-images': ((3, 2, 7, 16, 7, 5), 'fp32', False, False, (4, 4, 8, 1, 4),
                             (2, 8, 16, 1, 2, 8)),
}


@pytest.mark.parametrize('case', list(KERNEL_CASES))
def test_kernels_match_float64_reference(interpret, case):
    shape, dname, bias, cl, fcfg, wcfg = KERNEL_CASES[case]
    x, w, b, g = data(shape, dname, bias, cl)
    kh, kw = shape[4:]
    if fcfg is None:
        y, gx, gw = m.forward(x, w, b), m.input_grad(g, w), m.weight_grad(x, g, kh, kw)
    else:
        y = m._launch_forward(x, m.expand_weight(w), b, kh, kw, fcfg)
        gx = m._launch_forward(g, m.expand_weight(w, flip=True), None, kh, kw, fcfg)
        gw = m._launch_wgrad(x, g, kh, kw, wcfg)
    assert y.dtype == x.dtype and gw.dtype == torch.float32 and gw.shape == (shape[1], 1, kh, kw)
    layout = torch.channels_last if cl else torch.contiguous_format
    assert y.is_contiguous(memory_format=layout)
    for got, r, what in zip((y, gx, gw), reference(x, w, b, g), ('y', 'gx', 'gw')):
        close(got, r, REL[dname], what)


# name: (N, C, H, W, Kh, Kw), dtype, bias, channels_last
DISPATCH_CASES = {
    'fp32-bias': ((1, 2, 6, 8, 7, 7), 'fp32', True, False),
    'fp32-kernel-cropped-to-map': ((1, 1, 5, 7, 13, 13), 'fp32', False, False),
    'bf16-rect-bias': ((2, 1, 5, 6, 7, 3), 'bf16', True, False),
    'fp16-channels-last-bias': ((1, 2, 6, 8, 5, 5), 'fp16', True, True),
}


@pytest.mark.parametrize('case', list(DISPATCH_CASES))
def test_dispatch_autograd_in_interpreter(interpret, case):
    """``impl='triton'`` on CPU tensors: the custom ops and their autograd formula."""
    shape, dname, bias, cl = DISPATCH_CASES[case]
    x, w, b, g = data(shape, dname, bias, cl)
    leaves = [t.clone().requires_grad_() for t in (x, w) + ((b,) if bias else ())]
    y = depthwise_conv2d(leaves[0], leaves[1], leaves[2] if bias else None, impl='triton')
    y.backward(g)
    assert y.dtype == x.dtype and (not cl or y.is_contiguous(memory_format=torch.channels_last))
    for got, r, what in zip([y] + [t.grad for t in leaves], reference(x, w, b, g), 'y x w b'):
        close(got, r, REL[dname], what)


def test_empty_batch_in_interpreter(interpret):
    empty = torch.zeros(0, 2, 8, 8, requires_grad=True)
    w = torch.randn(2, 1, 7, 7, requires_grad=True)
    depthwise_conv2d(empty, w, impl='triton').sum().backward()
    assert empty.grad.shape == empty.shape and not w.grad.any()


def test_interpreter_is_chosen_at_call_time(monkeypatch):
    """The setting of the moment picks the kernels: interpreted or compiled ones."""
    from triton.runtime.interpreter import InterpretedFunction
    from triton.runtime.jit import JITFunction
    assert isinstance(m.kernels(True).fwd, InterpretedFunction)
    assert type(m.kernels(False).fwd) is JITFunction
    monkeypatch.setenv('TRITON_INTERPRET', '0')
    with pytest.raises(RuntimeError, match='TRITON_INTERPRET'):
        depthwise_conv2d(torch.zeros(1, 1, 8, 8), torch.zeros(1, 1, 7, 7), impl='triton')


def test_import_needs_only_torch():
    """``import mmreplk.ops`` (and a call) works without triton, numpy, mmengine, mmcv,
    mmseg, mmdet: what a torch-only GPU box has. A fresh process: the packages must be
    unimportable before ``mmreplk.ops`` is first imported, and its custom ops can be
    registered only once per process."""
    code = textwrap.dedent('''
        import sys
        for name in ('triton', 'numpy', 'mmengine', 'mmcv', 'mmseg', 'mmdet'):
            sys.modules[name] = None  # 'import name' now fails, find_spec returns None
        import torch
        from mmreplk.ops import depthwise_conv2d, dwconv
        assert not dwconv.triton_available()
        x, w = torch.randn(1, 2, 8, 8), torch.randn(2, 1, 9, 9)
        y = depthwise_conv2d(x, w)
        assert torch.allclose(y, torch.nn.functional.conv2d(x, w, None, 1, 4, 1, 2), atol=1e-4)
        ''')
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    proc = subprocess.run([sys.executable, '-W', 'ignore', '-c', code], capture_output=True,
                          text=True, env=env)
    assert proc.returncode == 0, proc.stderr


def test_interpreted_launch_leaves_triton_language_as_it_was(interpret):
    """Triton's interpreter patches triton.language (and leaves patches behind for library
    functions it calls); compiling in the same process needs them undone."""
    import triton.language as tl
    x = torch.randn(1, 1, 4, 8)
    m.weight_grad(x, x, 3, 3)  # first launch: imports the interpreter's modules
    before = {name: dict(vars(ns)) for name, ns in (('tl', tl), ('core', tl.core),
                                                     ('standard', tl.standard))}
    m.weight_grad(x, x, 3, 3)  # tl.sum, tl.zeros: library functions the interpreter runs
    for name, ns in (('tl', tl), ('core', tl.core), ('standard', tl.standard)):
        changed = [k for k, v in vars(ns).items() if before[name].get(k, v) is not v]
        assert not changed and set(vars(ns)) == set(before[name]), (name, changed[:5])
