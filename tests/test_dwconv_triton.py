"""The Triton CUDA-core kernels (mmreplk.ops.dwconv_triton) under TRITON_INTERPRET=1 against
a float64 F.conv2d reference: the code paths of the register-window kernels (halo past both
edges, maps smaller than the kernel, partial row / column tiles, programs with missing
planes, rectangular kernels, vector widths 1 / 2 / 4, each dtype), with the interpreter's
config and with real configs of the tuning spaces (B = 8 windows, 16 planes per program)."""
import os
import subprocess
import sys

import pytest

_SCRIPT = r'''
import torch, torch.nn.functional as F
from mmreplk.ops import dwconv_triton as m

def ref(x, w, b, g):
    x, w, g = (t.detach().double().requires_grad_() for t in (x, w, g))
    b = b.double() if b is not None else None
    y = F.conv2d(x, w, b, 1, (w.shape[2] // 2, w.shape[3] // 2), 1, w.shape[0])
    y.backward(g)
    return y.detach(), x.grad, w.grad

def check(got, r, rel, what):
    err = (got.double() - r).abs().max().item()
    assert err <= rel * r.abs().max().item(), (what, err, r.abs().max().item())

torch.manual_seed(0)
# (N, C, H, W, Kh, Kw), dtype, bias, channels_last, forward config, wgrad config
cases = [
    ((3, 1, 5, 6, 5, 3), torch.float32, True, False, None, None),    # planes, VEC 2, rect
    ((1, 1, 3, 5, 7, 7), torch.float32, False, False, None, None),   # map < kernel, VEC 1
    ((1, 1, 4, 8, 5, 5), torch.bfloat16, True, False, None, None),   # VEC 4
    ((1, 2, 3, 4, 3, 3), torch.float16, False, True, None, None),
    ((2, 1, 5, 16, 3, 5), torch.float32, True, False, (2, 8, 16, 1), (2, 8, 16, 1, 16)),
    ((1, 1, 6, 13, 3, 5), torch.float32, False, False, (4, 4, 8, 1), (2, 8, 8, 1, 32)),
]
for (n, c, h, w_, kh, kw), dt, bias, cl, fcfg, wcfg in cases:
    x = torch.randn(n, c, h, w_).to(dt)
    if cl:
        x = x.contiguous(memory_format=torch.channels_last)
    w = torch.randn(c, 1, kh, kw).to(dt)
    b = torch.randn(c).to(dt) if bias else None
    g = torch.randn(n, c, h, w_).to(dt)
    if fcfg is None:  # the public functions (the tuner's config)
        y, gx, gw = m.forward(x, w, b), m.input_grad(g, w), m.weight_grad(x, g, kh, kw)
    else:
        y = m._launch_forward(x, m.expand_weight(w), b, kh, kw, fcfg)
        gx = m._launch_forward(g, m.expand_weight(w, flip=True), None, kh, kw, fcfg)
        gw = m._launch_wgrad(x, g, kh, kw, wcfg)
    assert y.dtype == dt and gw.dtype == torch.float32 and gw.shape == (c, 1, kh, kw)
    assert y.is_contiguous(memory_format=torch.channels_last if cl else torch.contiguous_format)
    rel = 2e-5 if dt == torch.float32 else 1e-2
    for got, r, what in zip((y, gx, gw), ref(x, w, b, g), ('y', 'gx', 'gw')):
        check(got, r, rel, (what, n, c, h, w_, kh, kw))
print('ok')
'''


def test_triton_kernels_match_float64_reference():
    pytest.importorskip('triton')
    env = dict(os.environ, TRITON_INTERPRET='1', PYTHONPATH=os.pathsep.join(sys.path))
    proc = subprocess.run([sys.executable, '-c', _SCRIPT], capture_output=True, text=True,
                          env=env, timeout=600)
    assert proc.returncode == 0 and 'ok' in proc.stdout, proc.stderr[-3000:]
