"""Tensor-core depthwise conv kernels (mmreplk.ops.dwconv_triton_tc): numerics in the
Triton interpreter (in this process) against a float64 F.conv2d, input checks, and the
ahead-of-time specs (compiled for sm_90, MMA instructions in the SASS)."""
import os
import shutil
import subprocess

import pytest
import torch
import torch.nn.functional as F

triton = pytest.importorskip('triton')

# Errors are measured relative to max |reference|; the reference is a float64 F.conv2d of the
# same (already rounded) input values. Tolerances are those of the GPU arithmetic:
# * bf16 / fp16: products of two bf16 (fp16) values are exact in fp32 and the sums run in
#   fp32 (error ~ K^2 * 2^-24); the output is rounded to the input dtype: half an ulp is
#   2^-9 (bf16, 8 mantissa bits) or 2^-12 (fp16) of a value <= max |y|. Hence 1e-2 (bf16)
#   and 1e-3 (fp16) for the forward and the input gradient; the weight gradient stays in
#   fp32: 1e-4.
# * fp32 takes TF32 (10 mantissa bits): each operand is rounded by up to 2^-11, products
#   carry ~2^-10 relative error, summed in fp32 over up to K^2 (N*H*W) terms of random
#   sign: ~1e-3 of max |y|; 5e-3 leaves room. (The interpreter computes tl.dot in full
#   fp32, so here the check is of the indexing, at the tolerance a GPU run must meet.)
TOL = {'bf16': dict(y=1e-2, gx=1e-2, gw=1e-4),
       'fp16': dict(y=1e-3, gx=1e-3, gw=1e-4),
       'fp32': dict(y=5e-3, gx=5e-3, gw=5e-3)}

# (N, C, H, W, Kh, Kw, dtype, bias, channels_last). The interpreter config uses 32-row
# tiles (BM=32). Rows wider than 32 columns run in 16-column chunks (W=37 and W=40 end in
# a partial chunk), narrower ones as one whole-row band (W=12, 9); H=10 and H=9 pack two
# images into a tile (N=3 leaves one image slot masked), K=31 exceeds the 20-row map,
# Kw=33 is the widest band the chunks support, and 5x13 / 13x3 are rectangular.
CASES = {
    'bf16-edges-bias': (2, 3, 10, 37, 7, 7, 'bf16', True, False),
    'fp16-kernel-larger-than-map': (1, 2, 20, 12, 31, 31, 'fp16', False, False),
    'tf32-rect-5x13-bias': (3, 2, 9, 40, 5, 13, 'fp32', True, False),
    'bf16-rect-13x3-channels-last': (2, 2, 17, 9, 13, 3, 'bf16', False, True),
    'fp16-widest-band': (1, 1, 6, 40, 3, 33, 'fp16', False, False),
}

DT = {'bf16': torch.bfloat16, 'fp16': torch.float16, 'fp32': torch.float32}


@pytest.mark.parametrize('case', list(CASES))
def test_matches_float64_conv(monkeypatch, case):
    """In Triton's interpreter, in this process (TRITON_INTERPRET is read at call time)."""
    from mmreplk.ops import dwconv_triton_tc as tc
    monkeypatch.setenv('TRITON_INTERPRET', '1')
    monkeypatch.setattr(torch.backends.cudnn, 'allow_tf32', True)  # fp32 runs TF32
    n, c, h, w, kh, kw, dname, bias, cl = CASES[case]
    gen = torch.Generator().manual_seed(0)
    dt = DT[dname]
    x, g = (torch.randn(n, c, h, w, generator=gen).to(dt) for _ in range(2))
    wt = torch.randn(c, 1, kh, kw, generator=gen).to(dt)
    b = torch.randn(c, generator=gen).to(dt) if bias else None
    if cl:
        x = x.contiguous(memory_format=torch.channels_last)
    got = dict(y=tc.forward(x, wt, b), gx=tc.input_grad(g, wt), gw=tc.weight_grad(x, g, kh, kw))
    xr, wr, gr = (t.double().requires_grad_() for t in (x, wt, g))
    yr = F.conv2d(xr, wr, b.double() if bias else None, 1, (kh // 2, kw // 2), 1, c)
    yr.backward(gr)
    for what, ref in (('y', yr.detach()), ('gx', xr.grad), ('gw', wr.grad)):
        err = ((got[what].double() - ref).abs().max() / ref.abs().max()).item()
        assert err <= TOL[dname][what], f'{what}: error {err:.3g} of max |ref|'
    assert [t.dtype for t in got.values()] == [dt, dt, torch.float32]
    assert got['gw'].shape == (c, 1, kh, kw)
    assert got['y'].stride() == x.stride()  # x's memory format (channels_last too)


def test_input_checks():
    from mmreplk.ops import dwconv_triton_tc as tc
    x = torch.zeros(1, 2, 8, 8, dtype=torch.bfloat16)
    with pytest.raises(ValueError, match='Kw <= 33'):
        tc.forward(x, torch.zeros(2, 1, 3, 35, dtype=torch.bfloat16))
    with pytest.raises(ValueError, match='Kw <= 33'):
        tc.weight_grad(x, x, 3, 35)
    with pytest.raises(ValueError, match='dtypes differ'):
        tc.forward(x, torch.zeros(2, 1, 3, 3, dtype=torch.float16))
    with pytest.raises(ValueError, match='weight must be'):
        tc.input_grad(x, torch.zeros(3, 1, 3, 3, dtype=torch.bfloat16))
    saved = torch.backends.cudnn.allow_tf32
    try:
        torch.backends.cudnn.allow_tf32 = False
        with pytest.raises(ValueError, match='TF32'):
            tc.forward(x.float(), torch.zeros(2, 1, 3, 3))
    finally:
        torch.backends.cudnn.allow_tf32 = saved


def test_aot_specs_contract():
    from mmreplk.ops import dwconv_triton_tc as tc
    for dtype in ('bf16', 'fp16', 'fp32'):
        specs = tc.aot_specs((2, 8, 32, 32, 27), dtype)
        assert {s.kernel for s in specs} == {'fwd_tc', 'dgrad_tc', 'wgrad_tc'}
        for s in specs:
            assert s.mma and 0 < s.useful_fraction <= 1 and s.grid > 0
            assert list(s.signature) == s.fn.arg_names
            assert {k for k, v in s.signature.items() if v == 'constexpr'} == set(s.constexprs)
            assert s.signature['x_ptr'] == f'*{dtype}'
    fwd = tc.aot_specs((16, 128, 128, 128, 31), 'bf16')[0]
    # the band of a 16-column chunk: 64 MACs per real tap column, times the taps in the map
    assert fwd.useful_fraction == pytest.approx(31 / 64 * 0.885, abs=2e-3)


def _cuobjdump():
    path = os.path.join(os.path.dirname(triton.__file__), 'backends', 'nvidia', 'bin',
                        'cuobjdump')
    return path if os.path.exists(path) else shutil.which('cuobjdump')


def test_aot_spec_compiles_to_mma_for_sm90(tmp_path, monkeypatch):
    """Compiled ahead of time whatever TRITON_INTERPRET says."""
    monkeypatch.setenv('TRITON_INTERPRET', '1')
    tool = _cuobjdump()
    assert tool is not None, "triton's nvidia backend tools (cuobjdump) are missing"
    from triton.backends.compiler import GPUTarget
    from triton.compiler import ASTSource

    from mmreplk.ops import dwconv_triton_tc as tc
    spec = next(s for s in tc.aot_specs((2, 4, 16, 64, 31), 'bf16') if s.kernel == 'fwd_tc')
    src = ASTSource(fn=spec.fn, signature=spec.signature, constexprs=spec.constexprs,
                    attrs=spec.extra['attrs'])
    compiled = triton.compile(src, target=GPUTarget('cuda', 90, 32),
                              options=dict(num_warps=spec.num_warps,
                                           num_stages=spec.num_stages))
    cubin = tmp_path / 'fwd_tc.cubin'
    cubin.write_bytes(compiled.asm['cubin'])
    sass = subprocess.run([tool, '-sass', str(cubin)], capture_output=True, text=True,
                          check=True).stdout
    assert 'HGMMA.64x64x16.F32.BF16' in sass  # warpgroup MMA: the 16 x 64 band, bf16
