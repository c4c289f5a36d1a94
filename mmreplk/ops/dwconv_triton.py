"""Triton kernels for the stride-1 'same' depthwise convolution (forward, dgrad, wgrad).

Import this module only when Triton is importable (see :func:`triton_available`). The
kernels read contiguous NCHW tensors of any float dtype and accumulate in fp32.

* Forward: one program per (n, c) plane and a BH x BW output tile. For each kernel column
  j it walks the BH + Kh - 1 input rows the tile needs; each loaded input row segment
  (BW values) is used by all BH output rows through an outer product with a column of the
  kernel, so every load feeds BH FMAs (register reuse on CUDA cores).
* Input gradient: the forward kernel with the weight flipped in both axes.
* Weight gradient: a split reduction. One program per (c, block of BI kernel rows) and
  split (n, chunk of 32 output rows, block of BW columns) accumulates BI x Kw x BW partial
  products, reusing each input row window for BI kernel rows; the partial sums land in a
  (splits, C, Kh, Kw) fp32 buffer that is summed afterwards (deterministic, no atomics).

The forward is autotuned per (H, W, Kh, Kw) over a few tile shapes, the weight gradient over
BI and the warp count. Under ``TRITON_INTERPRET=1`` only the first config of each is used.
"""
import os

import torch
import triton
import triton.language as tl

_INTERPRET = os.environ.get('TRITON_INTERPRET', '0') == '1'


def _configs(options):
    if _INTERPRET:  # the interpreter is slow: one small config is enough to check numerics
        options = options[:1]
    return [triton.Config(dict(meta), num_warps=warps) for meta, warps in options]


_FWD_CONFIGS = _configs([
    ((('BH', 4), ('BW', 16)), 1),
    ((('BH', 8), ('BW', 64)), 4),
    ((('BH', 16), ('BW', 64)), 4),
    ((('BH', 8), ('BW', 128)), 4),
    ((('BH', 16), ('BW', 32)), 4),
    ((('BH', 8), ('BW', 32)), 2),
])

_WGRAD_CONFIGS = _configs([
    ((('BI', 2),), 2),
    ((('BI', 4),), 4),
    ((('BI', 8),), 4),
    ((('BI', 4),), 8),
])


@triton.autotune(configs=_FWD_CONFIGS, key=['H', 'W', 'KH', 'KW'])
@triton.jit
def _dw_fwd_kernel(x_ptr, w_ptr, b_ptr, y_ptr, C, H, W,
                   KH: tl.constexpr, KW: tl.constexpr, HAS_BIAS: tl.constexpr,
                   BH: tl.constexpr, BW: tl.constexpr):
    pid_nc = tl.program_id(0)
    h0 = tl.program_id(1) * BH
    w0 = tl.program_id(2) * BW
    c = pid_nc % C
    plane = pid_nc.to(tl.int64) * H * W
    offs_h = h0 + tl.arange(0, BH)
    offs_w = w0 + tl.arange(0, BW)
    rows_out = tl.arange(0, BH)
    acc = tl.zeros((BH, BW), dtype=tl.float32)
    for j in range(KW):
        cols = offs_w + (j - KW // 2)
        col_ok = (cols >= 0) & (cols < W)
        for r in range(BH + KH - 1):
            row = h0 + r - KH // 2
            xr = tl.load(x_ptr + plane + row * W + cols,
                         mask=col_ok & (row >= 0) & (row < H), other=0.).to(tl.float32)
            tap = r - rows_out  # kernel row used by each output row of the tile
            wc = tl.load(w_ptr + c * KH * KW + tap * KW + j,
                         mask=(tap >= 0) & (tap < KH), other=0.).to(tl.float32)
            acc += wc[:, None] * xr[None, :]
    if HAS_BIAS:
        acc += tl.load(b_ptr + c).to(tl.float32)
    mask = (offs_h[:, None] < H) & (offs_w[None, :] < W)
    tl.store(y_ptr + plane + offs_h[:, None] * W + offs_w[None, :],
             acc.to(y_ptr.dtype.element_ty), mask=mask)


@triton.autotune(configs=_WGRAD_CONFIGS, key=['H', 'W', 'KH', 'KW', 'HCH', 'BW'])
@triton.jit
def _dw_wgrad_kernel(x_ptr, g_ptr, part_ptr, C, H, W, N_HC, N_WB,
                     KH: tl.constexpr, KW: tl.constexpr, KWP: tl.constexpr,
                     HCH: tl.constexpr, BW: tl.constexpr, BI: tl.constexpr):
    pid0 = tl.program_id(0)
    split = tl.program_id(1)  # (n, chunk of HCH output rows, block of BW columns)
    n_ib: tl.constexpr = (KH + BI - 1) // BI
    c = pid0 // n_ib
    i0 = (pid0 % n_ib) * BI
    n = split // (N_HC * N_WB)
    h_lo = (split // N_WB % N_HC) * HCH
    w0 = (split % N_WB) * BW
    h_hi = tl.minimum(h_lo + HCH, H)
    plane = (n.to(tl.int64) * C + c) * H * W
    taps_i = i0 + tl.arange(0, BI)
    taps_j = tl.arange(0, KWP)
    gcols = w0 + tl.arange(0, BW)
    cols = gcols[None, :] + taps_j[:, None] - KW // 2  # (KWP, BW) sliding windows
    col_ok = (cols >= 0) & (cols < W) & (taps_j[:, None] < KW)
    acc = tl.zeros((BI, KWP, BW), dtype=tl.float32)
    for rr in range(HCH + BI - 1):
        row = h_lo + i0 - KH // 2 + rr  # input row shared by the BI kernel rows
        xw = tl.load(x_ptr + plane + row * W + cols,
                     mask=col_ok & (row >= 0) & (row < H), other=0.).to(tl.float32)
        grow = row - taps_i + KH // 2  # output row that pairs with it, per kernel row
        g_ok = (grow >= h_lo) & (grow < h_hi) & (taps_i < KH)
        gt = tl.load(g_ptr + plane + grow[:, None] * W + gcols[None, :],
                     mask=g_ok[:, None] & (gcols[None, :] < W), other=0.).to(tl.float32)
        acc += xw[None, :, :] * gt[:, None, :]
    res = tl.sum(acc, axis=2)
    out = part_ptr + (split.to(tl.int64) * C + c) * KH * KW
    mask = (taps_i[:, None] < KH) & (taps_j[None, :] < KW)
    tl.store(out + taps_i[:, None] * KW + taps_j[None, :], res, mask=mask)


def forward(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor = None) -> torch.Tensor:
    """Depthwise 'same' conv; output in ``x``'s dtype and memory format."""
    n, c, h, w = x.shape
    kh, kw = weight.shape[-2:]
    xc = x.contiguous()
    y = torch.empty_like(xc)
    wc = weight.contiguous()
    b = bias.contiguous() if bias is not None else wc

    def grid(meta):
        return (n * c, triton.cdiv(h, meta['BH']), triton.cdiv(w, meta['BW']))

    _dw_fwd_kernel[grid](xc, wc, b, y, c, h, w, KH=kh, KW=kw, HAS_BIAS=bias is not None)
    if x.is_contiguous(memory_format=torch.channels_last) and not x.is_contiguous():
        y = y.contiguous(memory_format=torch.channels_last)
    return y


def input_grad(grad_out: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """Input gradient: the forward kernel with the weight flipped in both axes."""
    return forward(grad_out, weight.flip(-2, -1))


def weight_grad(x: torch.Tensor, grad_out: torch.Tensor, kh: int, kw: int) -> torch.Tensor:
    """fp32 weight gradient (C, 1, Kh, Kw) by a split reduction over batch and rows."""
    n, c, h, w = x.shape
    xc, gc = x.contiguous(), grad_out.contiguous()
    hch = min(32, h)
    bw = min(64, triton.next_power_of_2(w))
    n_hc, n_wb = triton.cdiv(h, hch), triton.cdiv(w, bw)
    part = torch.empty((n * n_hc * n_wb, c, kh, kw), device=x.device, dtype=torch.float32)

    def grid(meta):
        return (c * triton.cdiv(kh, meta['BI']), n * n_hc * n_wb)

    _dw_wgrad_kernel[grid](xc, gc, part, c, h, w, n_hc, n_wb, KH=kh, KW=kw,
                           KWP=triton.next_power_of_2(kw), HCH=hch, BW=bw)
    return part.sum(0)[:, None]
