"""CPU strategies for the stride-1 'same' depthwise convolution.

oneDNN's depthwise kernels are fast or slow depending on layout, kernel size and pass
(see docs/dwconv.md). Every pass here is a direct convolution (no FFT, no Winograd), so
rounding stays local, and only the pixels inside the image enter a sum (the zero padding
contributes no term, so a NaN/Inf reaches exactly the outputs and taps whose sums
contain it):

* forward, by one of two strategies: ``'nchw'``, stock ``F.conv2d`` on contiguous NCHW (fast
  for small kernels on small maps), and ``'cl'``, stock ``F.conv2d`` on channels_last
  (oneDNN's JIT depthwise kernel, fast for large kernels; NCHW falls back to a slow im2col
  path there);
* input gradient: the forward convolution of the output gradient with the kernel flipped
  in both axes;
* weight gradient: banded GEMMs over blocks of rows in chunks of planes (:func:`weight_grad`;
  PyTorch's own depthwise backward-weights paths are im2col, seconds at RepLKNet's shapes
  and gigabytes on large maps).

All arithmetic is fp32; results are cast back to the input dtype and returned in the
input's memory format.
"""
import itertools
from typing import Iterator, Optional, Tuple

import torch
import torch.nn.functional as F

STRATEGIES = ('nchw', 'cl')
# The thresholds below come from the CPU table of docs/dwconv.md ("CPU path"; 2-core AMD
# EPYC, AVX-512, torch 2.13, fp32). Kernels up to STOCK_MAX_KERNEL run stock F.conv2d
# with its own autograd: oneDNN's JIT kernels handle them in every layout and pass.
STOCK_MAX_KERNEL = 7
# On AVX-512, NCHW beats channels_last for kernels up to NCHW_MAX_KERNEL on maps of at
# most NCHW_MAX_PIXELS (RepLKNet-31B stage 4, 2x1024x16x16, K=13: 2.5 ms NCHW, 9-32 ms
# channels_last); larger kernels or maps fall to NCHW's im2col path (seconds). Without
# AVX-512 oneDNN has no such NCHW kernel: channels_last everywhere (2-core AVX2 dev
# machine, forward, 8x1024x7x7 K=13: 58 ms NCHW, 3.0 ms channels_last; 2x1024x16x16:
# 66 ms vs 7.5 ms).
NCHW_MAX_KERNEL = 13
NCHW_MAX_PIXELS = 16 * 16
NCHW_SMALL_MAPS = torch.backends.cpu.get_cpu_capability().startswith('AVX512')
# Weight gradient (weight_grad): gradient rows per GEMM block. A block of B rows meets
# B + K - 1 input rows; the GEMM computes all those pairs and keeps K per row, so 16 rows
# compute 1.5x the useful products at K = 31 (32 rows: 1.9x, and measured no faster at
# the 31B stage shapes on the 2-core AVX2 dev machine; 8 rows: GEMMs too small for MKL).
WGRAD_BLOCK_ROWS = 16
# Elements (fp32) in each of the weight gradient's padded copies of one chunk of planes:
# 16 MB, so its working memory is bounded whatever N, C and the map size.
WGRAD_CHUNK_ELEMENTS = 1 << 22
# Maps of at most this many pixels take stock's weight gradient (oneDNN is fast there:
# 2x1024x16x16, K=13: stock 0.28 s, the GEMMs 1.0 s; from 28x28 up stock is im2col,
# 2x512x32x32, K=27: 21 s vs 1.1 s; 2-core AVX2 dev machine, under load).
WGRAD_STOCK_MAX_PIXELS = 16 * 16


def choose_strategy(n: int, c: int, h: int, w: int, kh: int, kw: int,
                    small_maps_nchw: bool = NCHW_SMALL_MAPS) -> str:
    """Deterministic rule table for the forward (and input-gradient) convolution: NCHW for
    small kernels, or (with AVX-512: ``small_maps_nchw``) kernels up to
    :data:`NCHW_MAX_KERNEL` on maps up to :data:`NCHW_MAX_PIXELS`; channels_last oneDNN
    otherwise."""
    k = max(kh, kw)
    if k <= STOCK_MAX_KERNEL or (small_maps_nchw and k <= NCHW_MAX_KERNEL
                                 and h * w <= NCHW_MAX_PIXELS):
        return 'nchw'
    return 'cl'


def prefers_stock(kernel_size: int) -> bool:
    """Kernels up to :data:`STOCK_MAX_KERNEL` run stock ``F.conv2d``."""
    return kernel_size <= STOCK_MAX_KERNEL


def memory_format_of(x: torch.Tensor) -> torch.memory_format:
    """The memory format the fast paths return for input ``x``: channels_last when ``x`` is
    channels_last (and not also contiguous), else contiguous."""
    if x.is_contiguous(memory_format=torch.channels_last) and not x.is_contiguous():
        return torch.channels_last
    return torch.contiguous_format


def conv_same(x: torch.Tensor, weight: torch.Tensor,
              strategy: Optional[str] = None) -> torch.Tensor:
    """fp32 result of the stride-1 'same' depthwise conv ``x`` (N,C,H,W) * ``weight`` (C,1,Kh,Kw).

    ``strategy`` None applies :func:`choose_strategy`, with channels_last for a weight
    that holds a NaN/Inf (on maps of K - 1 pixels or more per side only that layout
    leaves the zero padding out of the sums).
    """
    n, c, h, w = x.shape
    kh, kw = weight.shape[-2:]
    if strategy is None:
        strategy = choose_strategy(n, c, h, w, kh, kw)
        if strategy == 'nchw' and not torch.isfinite(weight).all():
            strategy = 'cl'  # NCHW oneDNN can multiply NaN/Inf taps by the zero padding
    if strategy not in STRATEGIES:
        raise ValueError(f'unknown CPU strategy {strategy!r}; valid: {STRATEGIES}')
    fmt = torch.channels_last if strategy == 'cl' else torch.contiguous_format
    xf = x.float().contiguous(memory_format=fmt)
    return F.conv2d(xf, weight.float(), None, 1, (kh // 2, kw // 2), 1, c)


def forward(x: torch.Tensor, weight: torch.Tensor,
            bias: Optional[torch.Tensor] = None) -> torch.Tensor:
    """Forward pass; output in ``x``'s dtype and memory format."""
    out = conv_same(x, weight)
    if bias is not None:
        out = out + bias.float().view(1, -1, 1, 1)
    return out.to(x.dtype).contiguous(memory_format=memory_format_of(x))


def input_grad(grad_out: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """Input gradient: forward conv of ``grad_out`` with the kernel flipped in both axes."""
    out = conv_same(grad_out, weight.flip(-2, -1)).to(grad_out.dtype)
    return out.contiguous(memory_format=memory_format_of(grad_out))


def _plane_chunks(x: torch.Tensor, grad_out: torch.Tensor, step: int
                  ) -> Iterator[Tuple[int, torch.Tensor, torch.Tensor]]:
    """(first plane index in N*C order, x planes, grad_out planes), at most ``step``
    planes each, as views: across images for contiguous tensors, else within one image
    (a channels_last tensor is never copied whole)."""
    n, c = x.shape[:2]
    if x.is_contiguous() and grad_out.is_contiguous():
        xf, gf = x.flatten(0, 1), grad_out.flatten(0, 1)
        for first in range(0, n * c, step):
            yield first, xf[first:first + step], gf[first:first + step]
    else:
        for image, first in itertools.product(range(n), range(0, c, step)):
            yield (image * c + first, x[image, first:first + step],
                   grad_out[image, first:first + step])


def weight_grad(x: torch.Tensor, grad_out: torch.Tensor, kh: int, kw: int) -> torch.Tensor:
    """fp32 weight gradient (C, 1, Kh, Kw), computed directly in bounded memory.

    gw[c, i, j] = sum over n, p, q of x[n, c, p + i - Kh//2, q + j - Kw//2] * g[n, c, p, q]
    over the terms whose x pixel lies inside the image. Per plane, the output-gradient
    rows go in blocks of B = :data:`WGRAD_BLOCK_ROWS`; for kernel column j, the block's B
    rows times the B + Kh - 1 input rows they meet is one (B x W') @ (W' x (B + Kh - 1))
    GEMM over the W' columns where both lie inside the image, and its band (p, p + i)
    holds the block's sums for kernel row i. Band entries that pair a gradient row with a
    row outside the image are zero for finite data; when x or grad_out holds a NaN/Inf
    they are dropped (not multiplied by zero), so a NaN/Inf reaches exactly the taps whose
    sums contain it. Planes go in chunks whose copies hold at most
    :data:`WGRAD_CHUNK_ELEMENTS` elements, so the extra memory does not grow with N*C.
    Finite data on maps of at most :data:`WGRAD_STOCK_MAX_PIXELS` take stock's weight
    gradient.
    """
    n, c, h, w = x.shape
    out = x.new_zeros((n * c, kh, kw), dtype=torch.float32)
    if out.numel() == 0 or h == 0 or w == 0:
        return out.view(n, c, kh, kw).sum(0).unsqueeze(1)
    # a NaN/Inf makes its sum non-finite (a finite overflow only takes the masked path)
    finite = bool(torch.isfinite(x.sum(dtype=torch.float32))
                  & torch.isfinite(grad_out.sum(dtype=torch.float32)))
    if finite and h * w <= WGRAD_STOCK_MAX_PIXELS:  # stock multiplies NaN/Inf by padding
        return torch.nn.grad.conv2d_weight(x.float(), (c, 1, kh, kw), grad_out.float(), 1,
                                           (kh // 2, kw // 2), 1, c)
    block = min(WGRAD_BLOCK_ROWS, h)
    blocks = -(-h // block)
    window = block + kh - 1
    # Windows start every `block` rows of the padded planes laid end to end, so each
    # plane gets `extra` junk blocks (zero gradient rows) that let windows overhang it;
    # a one-block plane needs none: its windows are whole padded planes.
    extra = 0 if blocks == 1 else -(-(kh - 1) // block)
    rows = window if blocks == 1 else (blocks + extra) * block
    stride = rows if blocks == 1 else block  # rows from one window to the next
    pad_top, pad_left = kh // 2, kw // 2
    valid = None
    if not finite:
        p = torch.arange(blocks * block).view(blocks, block, 1)
        r = p + torch.arange(kh).view(1, 1, kh) - pad_top  # the input row of each entry
        valid = (p < h) & (r >= 0) & (r < h)
    step = max(1, WGRAD_CHUNK_ELEMENTS // (rows * w))
    for first, xs, gs in _plane_chunks(x, grad_out, step):
        m = xs.shape[0]
        units = m * (blocks + extra)
        xp = x.new_zeros((m * rows, w), dtype=torch.float32)
        xp.view(m, rows, w)[:, pad_top:pad_top + h] = xs
        gp = x.new_zeros((units, block, w), dtype=torch.float32)
        gp.view(m, -1, w)[:, :h] = gs
        fit = units - extra  # the windows that end inside the chunk (the last ones are junk)
        res = x.new_empty((units, block, window), dtype=torch.float32)
        band = res.as_strided((m, blocks, block, kh),
                              ((blocks + extra) * block * window, block * window,
                               window + 1, 1))
        for j in range(kw):
            shift = j - pad_left
            q0, q1 = max(0, -shift), min(w, w - shift)
            if q0 >= q1:
                continue
            windows = xp[:, q0 + shift:q1 + shift].as_strided(
                (fit, window, q1 - q0), (stride * w, w, 1))
            torch.bmm(gp[:fit, :, q0:q1], windows.transpose(1, 2), out=res[:fit])
            kept = band if valid is None else torch.where(valid, band, 0.)
            out[first:first + m, :, j] = kept.sum((1, 2))
    return out.view(n, c, kh, kw).sum(0).unsqueeze(1)
