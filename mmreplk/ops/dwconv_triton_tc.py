"""Tensor-core Triton kernels (``tl.dot``) for the stride-1 'same' depthwise convolution.

Import this module only when Triton is importable. Inputs are contiguous NCHW bf16 / fp16
tensors, or fp32 tensors when PyTorch's own convolution would use TF32
(:func:`mmreplk.ops.dwconv.conv_allows_tf32`); products run on tensor cores (bf16 / fp16 /
TF32), sums in fp32.

Forward (kernel ``fwd_tc``): a row of the map is cut into 16-column chunks; the band of a
chunk, i.e. the output columns its 16 inputs reach through one kernel row, spans
16 + Kw - 1 <= 48 columns, which fall in three 16-column output blocks (Kw <= 33). So for a
tile of BM output rows (BM // BH images of one channel times BH rows) and chunk ``cc``,
``acc[BM, 64] += X[BM, 16] @ T_i[16, 64]`` over the kernel rows i, where X holds input
rows ``h + i - Kh//2`` of the chunk and ``T_i[k, 16 d + n] = weight[i, 16 (d-1) + k - n +
Kw//2]`` (zero outside 0..Kw-1) is the banded (Toeplitz) matrix of kernel row i, gathered
from the weight inside the loop; its fourth block is zero (a power-of-two N). Block d of
``acc`` holds output block ``cc + 1 - d``; after chunk ``cc``, block 2 (output block
cc - 1) is complete and stored, and ``acc`` shifts by one block. Each input element is
loaded once per kernel row and feeds 64 MACs (Kw of them real): the FLOP inflation is
64 / Kw (48 / Kw on sm_80, where ptxas drops the MMAs of the always-zero fourth block).
Rows of at most 32 columns are one chunk instead: ``acc[BM, WP] += X[BM, WP] @ T_i[WP,
WP]`` with the full Toeplitz band ``T_i[u, v] = weight[i, u - v + Kw//2]`` (WP = 16 or 32),
which issues WP instead of 64 * ceil(W / 16) / W MACs per output column.
Input gradient (``dgrad_tc``): the same kernel with the weight flipped in both axes.

Weight gradient (``wgrad_tc``): ``gw[i, j] = sum_(n, r, w) g[n, r - i + P, w] *
x[n, r, w + j - Q]`` is a GEMM with M = kernel rows, N = kernel columns (padded to powers
of two) and K = (image, input row r, column w): per step, ``acc[KhP, KwP] += G[KhP, BK] @
X[BK, KwP]``, G holding the Kh output-gradient rows that pair with input row r and X the
Hankel matrix ``x[r, w + j - Q]`` gathered from that row. No band waste; the reduction is
split over (image, row) ranges, each split writing fp32 partial sums that are added after.

Tiles are autotuned per shape; the kernels are built at first use (:func:`kernels`), and
under ``TRITON_INTERPRET=1`` at call time run in Triton's interpreter with one small config.
:func:`aot_specs` lists the kernels and configs for ahead-of-time inspection.
"""
import functools
import types
from typing import List, Optional, Tuple

import torch
import triton
import triton.language as tl

from .aot import AotKernel, Shape
from .dwconv import conv_allows_tf32
from .triton_jit import build_kernels, interpreting

MAX_KW = 33  # three 16-column output blocks hold the band of a 16-column chunk
_WGRAD_PROGRAMS = 2048  # target (channel x split) programs of the weight gradient

# (BM, num_warps, num_stages): output rows per forward program
_FWD_SPACE = [(64, 4, 1), (128, 4, 1), (256, 8, 1), (256, 8, 2)]
# (BK, num_warps, num_stages): columns per weight-gradient step
_WGRAD_SPACE = [(16, 1, 1), (16, 2, 1), (32, 1, 1), (32, 4, 1), (64, 1, 1), (64, 2, 1),
                (64, 4, 1), (128, 2, 1)]
# the interpreter is slow: one small config, few weight-gradient splits
_INTERPRET_FWD_SPACE = [(32, 4, 1)]
_INTERPRET_WGRAD_SPACE = [(16, 1, 1)]
_INTERPRET_WGRAD_PROGRAMS = 8


def supports(kh: int, kw: int) -> bool:
    """Whether the tensor-core kernels handle a Kh x Kw kernel (odd sizes, Kw <= 33)."""
    return kh % 2 == 1 and kw % 2 == 1 and 1 <= kw <= MAX_KW and kh >= 1


def _precision(dtype: torch.dtype) -> str:
    if dtype in (torch.bfloat16, torch.float16):
        return 'ieee'  # ignored by tl.dot for 16-bit inputs
    if dtype == torch.float32 and conv_allows_tf32():
        return 'tf32'
    if dtype == torch.float32:
        raise ValueError('fp32 inputs take the tensor-core path only when TF32 is allowed '
                         '(torch.backends.cudnn.allow_tf32); use dwconv_triton')
    raise ValueError(f'unsupported dtype {dtype} for the tensor-core depthwise conv')


def _dot_f32(dtype: torch.dtype) -> bool:
    """Upcast the operands of tl.dot to fp32 (exact for bf16 products): only under the
    interpreter, whose tl.dot multiplies bf16 bit patterns as integers (Triton 3.6)."""
    return interpreting() and dtype == torch.bfloat16


def _check(x: torch.Tensor, weight: torch.Tensor) -> None:
    kh, kw = weight.shape[-2:]
    if weight.dim() != 4 or weight.shape[1] != 1 or weight.shape[0] != x.shape[1]:
        raise ValueError(f'weight must be (C, 1, Kh, Kw) with C = {x.shape[1]}, '
                         f'got {tuple(weight.shape)}')
    if not supports(kh, kw):
        raise ValueError(f'the tensor-core depthwise conv needs odd Kh, Kw with Kw <= '
                         f'{MAX_KW}, got {kh}x{kw}')
    if x.dtype != weight.dtype:
        raise ValueError(f'x and weight dtypes differ: {x.dtype} vs {weight.dtype}')


def _aligned(t: torch.Tensor) -> torch.Tensor:
    """Contiguous NCHW with a 16-byte aligned start (the kernels' vector loads need it)."""
    t = t.contiguous()
    return t if t.data_ptr() % 16 == 0 else t.clone()


def _rows_per_image(bm: int, h: int) -> int:
    return min(bm, triton.next_power_of_2(h))


def _prune_fwd(configs, named_args, **kwargs):
    """Tiles no taller than the rows there are; fp32 operands (twice the registers) spill
    in 256-row tiles without pipelining on sm_80, so those are left out."""
    rows = named_args['N'] * triton.next_power_of_2(kwargs['H'])
    fp32 = named_args['x_ptr'].dtype == torch.float32
    kept = [cfg for cfg in configs if cfg.kwargs['BM'] <= max(64, rows)
            and not (fp32 and cfg.kwargs['BM'] == 256 and cfg.num_stages == 1)]
    return kept or configs[:1]


def _fwd_tc_kernel(x_ptr, w_ptr, b_ptr, y_ptr, N, C,
                   H: tl.constexpr, W: tl.constexpr, KH: tl.constexpr, KW: tl.constexpr,
                   FLIP: tl.constexpr, HAS_BIAS: tl.constexpr, PREC: tl.constexpr,
                   DOT_F32: tl.constexpr, HP: tl.constexpr, BM: tl.constexpr):
    BH: tl.constexpr = min(BM, HP)  # rows per image; BM // BH images share the tile
    NQ: tl.constexpr = (W + 15) // 16  # 16-column chunks (and output blocks) of a row
    WP: tl.constexpr = 16 if W <= 16 else 32  # the whole-row chunk when W <= 32
    pid = tl.program_id(0)
    c = pid % C
    h0 = tl.program_id(1) * BH
    m = tl.arange(0, BM)
    n = (pid // C) * (BM // BH) + m // BH
    h = h0 + m % BH
    plane = (n.to(tl.int64) * C + c) * (H * W)
    img_ok = n < N
    w_base = w_ptr + c * (KH * KW)
    bias = tl.load(b_ptr + c).to(tl.float32) if HAS_BIAS else 0.
    out_ptr = y_ptr + plane[:, None] + h[:, None] * W
    out_ok = (img_ok & (h < H))[:, None]
    if W <= 32:
        # one chunk holds the whole row: out = sum_i X_i @ T_i with the full WP x WP
        # Toeplitz band T_i[u, v] = weight[i, u - v + Q]
        cols = tl.arange(0, WP)
        tap = cols[:, None] - cols[None, :] + KW // 2
        acc = tl.zeros((BM, WP), tl.float32)
        for i in range(KH):
            acc = _band_step(acc, x_ptr, w_base, plane, h, img_ok, cols, tap, i,
                             H, W, KH, KW, FLIP, PREC, DOT_F32)
        tl.store(out_ptr + cols[None, :], (acc + bias).to(y_ptr.dtype.element_ty),
                 mask=out_ok & (cols < W)[None, :])
    else:
        kk = tl.arange(0, 16)
        nn = tl.arange(0, 64)
        # band column 16 d + n' of chunk row k holds tap j = 16 (d - 1) + k - n' + Q
        tap = kk[:, None] - (nn % 16)[None, :] + (16 * (nn // 16) - 16 + KW // 2)[None, :]
        acc = tl.zeros((BM, 64), tl.float32)
        for cc in range(0, NQ):
            for i in range(KH):
                acc = _band_step(acc, x_ptr, w_base, plane, h, img_ok, cc * 16 + kk, tap, i,
                                 H, W, KH, KW, FLIP, PREC, DOT_F32)
            acc = _store_and_shift(acc, bias, out_ptr, out_ok, cc - 1, W, BM)
        _store_and_shift(acc, bias, out_ptr, out_ok, NQ - 1, W, BM)  # chunk NQ: off the map


def _band_step(acc, x_ptr, w_base, plane, h, img_ok, cols, tap, i, H: tl.constexpr,
               W: tl.constexpr, KH: tl.constexpr, KW: tl.constexpr, FLIP: tl.constexpr,
               PREC: tl.constexpr, DOT_F32: tl.constexpr):
    """``acc + X @ T``: X = input rows ``h + i - Kh//2`` at ``cols`` (zero off the map),
    T = the band of kernel row i at taps ``tap`` (zero outside 0..Kw-1)."""
    row = h + (i - KH // 2)
    a = tl.load(x_ptr + plane[:, None] + row[:, None] * W + cols[None, :],
                mask=(img_ok & (row >= 0) & (row < H))[:, None] & (cols < W)[None, :],
                other=0.)
    if FLIP:  # input gradient: the kernel flipped in both axes
        t = tl.load(w_base + (KH - 1 - i) * KW + (KW - 1 - tap),
                    mask=(tap >= 0) & (tap < KW), other=0.)
    else:
        t = tl.load(w_base + i * KW + tap, mask=(tap >= 0) & (tap < KW), other=0.)
    if DOT_F32:
        a, t = a.to(tl.float32), t.to(tl.float32)
    return tl.dot(a, t, acc, input_precision=PREC)


def _store_and_shift(acc, bias, out_ptr, out_ok, q, W: tl.constexpr, BM: tl.constexpr):
    """Blocks d = 0..3 of ``acc`` hold output blocks q + 2 - d: store block 2 (output
    columns 16 q .. 16 q + 15, now complete) and return ``acc`` shifted by one block."""
    blocks = tl.permute(tl.reshape(acc, (BM, 2, 2, 16)), (0, 3, 1, 2))  # (BM, 16, d//2, d%2)
    even, odd = tl.split(blocks)
    b0, b2 = tl.split(even)
    b1, b3 = tl.split(odd)
    cols = q * 16 + tl.arange(0, 16)
    tl.store(out_ptr + cols[None, :], (b2 + bias).to(out_ptr.dtype.element_ty),
             mask=out_ok & ((cols >= 0) & (cols < W))[None, :])
    zero = tl.zeros((BM, 16), tl.float32)
    shifted = tl.join(tl.join(zero, b1), tl.join(b0, zero))  # block d <- block d - 1
    return tl.reshape(tl.permute(shifted, (0, 2, 3, 1)), (BM, 64))


def _prune_wgrad(configs, named_args, **kwargs):
    wp = triton.next_power_of_2(kwargs['W'])
    kept = [cfg for cfg in configs if min(wp, 32) <= cfg.kwargs['BK'] <= max(16, wp)]
    return kept or configs[:1]


def _wgrad_tc_kernel(x_ptr, g_ptr, part_ptr, N, C, ROWS: tl.constexpr,
                     H: tl.constexpr, W: tl.constexpr, KH: tl.constexpr, KW: tl.constexpr,
                     PREC: tl.constexpr, DOT_F32: tl.constexpr, KHP: tl.constexpr,
                     KWP: tl.constexpr, BK: tl.constexpr):
    c = tl.program_id(0)
    split = tl.program_id(1)  # a range of ROWS (image, input row) pairs
    P: tl.constexpr = KH // 2
    Q: tl.constexpr = KW // 2
    ii = tl.arange(0, KHP)
    jj = tl.arange(0, KWP)
    ww = tl.arange(0, BK)
    acc = tl.zeros((KHP, KWP), tl.float32)
    for w0 in range(0, W, BK):
        wc = w0 + ww
        xc = wc[:, None] + jj[None, :] - Q  # Hankel: column w + j - Q of the input row
        x_ok = (xc >= 0) & (xc < W) & (jj < KW)[None, :]
        for step in range(ROWS):
            t = split * ROWS + step
            n = t // H
            r = t % H  # input row; kernel row i pairs it with output row r - i + P
            plane = (n.to(tl.int64) * C + c) * (H * W)
            grow = r - ii + P
            g_ok = (grow >= 0) & (grow < H) & (ii < KH) & (n < N)
            a = tl.load(g_ptr + plane + grow[:, None] * W + wc[None, :],
                        mask=g_ok[:, None] & (wc < W)[None, :], other=0.)
            b = tl.load(x_ptr + plane + r * W + xc, mask=x_ok & (n < N), other=0.)
            if DOT_F32:
                a, b = a.to(tl.float32), b.to(tl.float32)
            acc = tl.dot(a, b, acc, input_precision=PREC)
    out = part_ptr + (split.to(tl.int64) * C + c) * (KH * KW)
    tl.store(out + ii[:, None] * KW + jj[None, :], acc,
             mask=(ii < KH)[:, None] & (jj < KW)[None, :])


@functools.lru_cache(maxsize=None)
def kernels(interpret: bool) -> types.SimpleNamespace:
    """The autotuned kernels ``fwd`` and ``wgrad``, compiled (``interpret`` False) or run by
    Triton's interpreter (one small config), and the raw ``fwd_fn`` / ``wgrad_fn``."""
    k = build_kernels((_fwd_tc_kernel, _band_step, _store_and_shift, _wgrad_tc_kernel),
                      interpret)
    fwd_space = _INTERPRET_FWD_SPACE if interpret else _FWD_SPACE
    wgrad_space = _INTERPRET_WGRAD_SPACE if interpret else _WGRAD_SPACE
    return types.SimpleNamespace(
        fwd_fn=k._fwd_tc_kernel, wgrad_fn=k._wgrad_tc_kernel,
        fwd=triton.autotune(
            configs=[triton.Config({'BM': bm}, num_warps=nw, num_stages=ns)
                     for bm, nw, ns in fwd_space],
            key=['N', 'C', 'H', 'W', 'KH', 'KW'],
            prune_configs_by={'early_config_prune': _prune_fwd})(k._fwd_tc_kernel),
        wgrad=triton.autotune(
            configs=[triton.Config({'BK': bk}, num_warps=nw, num_stages=ns)
                     for bk, nw, ns in wgrad_space],
            key=['N', 'C', 'ROWS', 'H', 'W', 'KH', 'KW'],
            prune_configs_by={'early_config_prune': _prune_wgrad})(k._wgrad_tc_kernel))


def _conv(x: torch.Tensor, weight: torch.Tensor, bias, flip: bool,
          config: Optional[Tuple[int, int, int]] = None) -> torch.Tensor:
    """The forward kernel, autotuned or with a fixed (BM, num_warps, num_stages)."""
    _check(x, weight)
    prec = _precision(x.dtype)
    n, c, h, w = x.shape
    kh, kw = weight.shape[-2:]
    xc = _aligned(x)
    y = torch.empty_like(xc)
    wc = _aligned(weight)
    b = _aligned(bias) if bias is not None else wc
    hp = triton.next_power_of_2(h)

    def grid(meta):
        bh = _rows_per_image(meta['BM'], h)
        return (c * triton.cdiv(n, meta['BM'] // bh), triton.cdiv(h, bh))

    args = dict(H=h, W=w, KH=kh, KW=kw, FLIP=flip, HAS_BIAS=bias is not None, PREC=prec,
                DOT_F32=_dot_f32(x.dtype), HP=hp)
    k = kernels(interpreting())
    if config is None:
        k.fwd[grid](xc, wc, b, y, n, c, **args)
    else:
        bm, warps, stages = config
        k.fwd_fn[grid(dict(BM=bm))](xc, wc, b, y, n, c, **args, BM=bm, num_warps=warps,
                                    num_stages=stages)
    if x.is_contiguous(memory_format=torch.channels_last) and not x.is_contiguous():
        y = y.contiguous(memory_format=torch.channels_last)
    return y


def forward(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor = None,
            config: Optional[Tuple[int, int, int]] = None) -> torch.Tensor:
    """Depthwise 'same' conv on tensor cores; output in ``x``'s dtype and memory format.
    ``config`` (BM, num_warps, num_stages) skips the autotuner (see :func:`fwd_configs`)."""
    return _conv(x, weight, bias, flip=False, config=config)


def fwd_configs(shape: Shape, dtype: torch.dtype) -> List[Tuple[int, int, int]]:
    """The forward configs (BM, num_warps, num_stages) the autotuner times at ``shape``."""
    configs = [triton.Config({'BM': bm}, num_warps=nw, num_stages=ns)
               for bm, nw, ns in _FWD_SPACE]
    kept = _prune_fwd(configs, dict(N=shape[0], x_ptr=torch.empty(0, dtype=dtype)),
                      H=shape[2])
    return [(cfg.kwargs['BM'], cfg.num_warps, cfg.num_stages) for cfg in kept]


def input_grad(grad_out: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """Input gradient: the forward kernel with the weight flipped in both axes."""
    return _conv(grad_out, weight, None, flip=True)


def _wgrad_splits(n: int, c: int, h: int, interpret: bool = False) -> int:
    target = _INTERPRET_WGRAD_PROGRAMS if interpret else _WGRAD_PROGRAMS
    return max(1, min(n * h, triton.cdiv(target, c)))


def weight_grad(x: torch.Tensor, grad_out: torch.Tensor, kh: int, kw: int) -> torch.Tensor:
    """fp32 weight gradient (C, 1, Kh, Kw) on tensor cores, split over (image, row) ranges."""
    if not supports(kh, kw):
        raise ValueError(f'the tensor-core depthwise conv needs odd Kh, Kw with Kw <= '
                         f'{MAX_KW}, got {kh}x{kw}')
    if grad_out.shape != x.shape or grad_out.dtype != x.dtype:
        raise ValueError(f'grad_out {tuple(grad_out.shape)} {grad_out.dtype} does not match '
                         f'x {tuple(x.shape)} {x.dtype}')
    prec = _precision(x.dtype)
    n, c, h, w = x.shape
    xc, gc = _aligned(x), _aligned(grad_out)
    interpret = interpreting()
    splits = _wgrad_splits(n, c, h, interpret)
    rows = triton.cdiv(n * h, splits)
    part = torch.empty((splits, c, kh, kw), device=x.device, dtype=torch.float32)
    kernels(interpret).wgrad[(c, splits)](
        xc, gc, part, n, c, rows, H=h, W=w, KH=kh, KW=kw, PREC=prec,
        DOT_F32=_dot_f32(x.dtype), KHP=max(16, triton.next_power_of_2(kh)),
        KWP=max(16, triton.next_power_of_2(kw)))
    return part.sum(0)[:, None]


def _taps_in_map(size: int, k: int) -> int:
    """Sum over the positions of a map axis of the kernel taps that fall inside it."""
    p = k // 2
    return sum(min(size, o + p + 1) - max(0, o - p) for o in range(size))


_ALIGNED = [['tt.divisibility', 16]]
_DTYPES = {'bf16': torch.bfloat16, 'fp16': torch.float16, 'fp32': torch.float32}


def aot_specs(shape: Shape, dtype: str) -> List[AotKernel]:
    """Every kernel and config launched for ``shape`` = (N, C, H, W, K) and ``dtype``
    ('bf16', 'fp16', or 'fp32' = TF32), in the :class:`~mmreplk.ops.aot.AotKernel` form.

    ``extra['attrs']`` holds the launch-time specialization (16-byte aligned pointers) to
    pass as ``ASTSource(..., attrs=...)``: without it, the compiler cannot prove the
    alignment of the vector loads. MAC counts are those of the tl.dot shapes; on sm_80,
    ptxas drops the forward's MMAs for the always-zero fourth band block
    (``extra['useful_fraction_sm80']``).
    """
    n, c, h, w, k = shape
    prec = 'tf32' if dtype == 'fp32' else 'ieee'
    taps = n * c * _taps_in_map(h, k) * _taps_in_map(w, k)
    hp = triton.next_power_of_2(h)
    common = dict(H=h, W=w, KH=k, KW=k, PREC=prec, DOT_F32=False)
    specs = []
    fwd_sig = dict(x_ptr=f'*{dtype}', w_ptr=f'*{dtype}', b_ptr=f'*{dtype}',
                   y_ptr=f'*{dtype}', N='i32', C='i32')
    fwd_sig.update({name: 'constexpr' for name in
                    ('H', 'W', 'KH', 'KW', 'FLIP', 'HAS_BIAS', 'PREC', 'DOT_F32', 'HP', 'BM')})
    fwd_configs = _prune_fwd([triton.Config({'BM': bm}, num_warps=nw, num_stages=ns)
                              for bm, nw, ns in _FWD_SPACE],
                             dict(N=n, x_ptr=torch.empty(0, dtype=_DTYPES[dtype])), H=h)
    elem = _DTYPES[dtype].itemsize
    for cfg in fwd_configs:
        bm = cfg.kwargs['BM']
        bh = _rows_per_image(bm, h)
        grid = c * triton.cdiv(n, bm // bh) * triton.cdiv(h, bh)
        # L2: the input rows of each row tile with its halo, and the output
        rows = sum(min(h, t * bh + bh + k // 2) - max(0, t * bh - k // 2)
                   for t in range(triton.cdiv(h, bh)))
        l2 = n * c * (rows + h) * w * elem
        if w <= 32:  # whole-row band: one WP x WP dot per kernel row
            wp = 16 if w <= 16 else 32
            per_iter, macs, zero_block = bm * wp * wp, k * bm * wp * wp, 1.
        else:  # 16-column chunks, a 16 x 64 band per kernel row; its last block is zero
            per_iter = bm * 16 * 64
            macs, zero_block = triton.cdiv(w, 16) * k * per_iter, 0.75
        for name, flip in (('fwd_tc', False), ('dgrad_tc', True)):
            specs.append(AotKernel(
                kernel=name, fn=kernels(False).fwd_fn, signature=fwd_sig,
                constexprs=dict(common, FLIP=flip, HAS_BIAS=False, HP=hp, BM=bm),
                num_warps=cfg.num_warps, num_stages=cfg.num_stages,
                config=f'BM={bm},BH={bh},w{cfg.num_warps},s{cfg.num_stages}', mma=True,
                useful_fraction=taps / (macs * grid), flops_per_program=macs, grid=grid,
                l2_bytes=l2, extra=dict(attrs={(i,): _ALIGNED for i in range(4)},
                           macs_per_iteration=per_iter,
                           useful_fraction_sm80=taps / (macs * grid * zero_block))))
    splits = _wgrad_splits(n, c, h)
    rows = triton.cdiv(n * h, splits)
    khp = kwp = max(16, triton.next_power_of_2(k))
    wg_sig = dict(x_ptr=f'*{dtype}', g_ptr=f'*{dtype}', part_ptr='*fp32', N='i32', C='i32')
    wg_sig.update({name: 'constexpr' for name in
                   ('ROWS', 'H', 'W', 'KH', 'KW', 'PREC', 'DOT_F32', 'KHP', 'KWP', 'BK')})
    wg_configs = _prune_wgrad([triton.Config({'BK': bk}, num_warps=nw, num_stages=ns)
                               for bk, nw, ns in _WGRAD_SPACE], {}, W=w)
    for cfg in wg_configs:
        bk = cfg.kwargs['BK']
        per_iter = khp * kwp * bk
        macs = rows * triton.cdiv(w, bk) * per_iter
        specs.append(AotKernel(
            kernel='wgrad_tc', fn=kernels(False).wgrad_fn, signature=wg_sig,
            constexprs=dict(common, ROWS=rows, KHP=khp, KWP=kwp, BK=bk),
            num_warps=cfg.num_warps, num_stages=cfg.num_stages,
            config=f'BK={bk},splits={splits},w{cfg.num_warps},s{cfg.num_stages}', mma=True,
            useful_fraction=taps / (macs * c * splits), flops_per_program=macs,
            grid=c * splits,
            # L2: per split its input rows and the output-gradient rows they pair with
            l2_bytes=c * splits * ((2 * rows + k - 1) * w * elem + k * k * 4),
            extra=dict(attrs={(i,): _ALIGNED for i in range(3)}, macs_per_iteration=per_iter)))
    return specs
