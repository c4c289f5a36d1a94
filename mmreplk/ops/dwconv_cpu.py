"""CPU strategies for the stride-1 'same' depthwise convolution.

oneDNN's depthwise kernels are fast or slow depending on layout, kernel size and pass
(see docs/dwconv.md). Every pass here is a direct convolution run by oneDNN, so rounding
stays local and NaN/Inf propagate exactly as in ``F.conv2d``:

* forward, by one of two strategies: ``'nchw'``, stock ``F.conv2d`` on contiguous NCHW (fast
  for small kernels on small maps), and ``'cl'``, stock ``F.conv2d`` on channels_last
  (oneDNN's JIT depthwise kernel, fast for large kernels; NCHW falls back to a slow im2col
  path there);
* input gradient: the forward convolution of the output gradient with the kernel flipped
  in both axes;
* weight gradient: the same sums rearranged as a depthwise forward convolution over the
  N*C planes in which the output gradient is the kernel (oneDNN's own backward-weights
  path for depthwise convolutions is im2col, seconds at RepLKNet's shapes).

All arithmetic is fp32; results are cast back to the input dtype and returned in the
input's memory format.
"""
from typing import Optional

import torch
import torch.nn.functional as F

STRATEGIES = ('nchw', 'cl')
# The thresholds below come from the CPU table of docs/dwconv.md ("CPU path"; 2-core AMD
# EPYC, AVX-512, torch 2.13, fp32). Kernels up to STOCK_MAX_KERNEL run stock F.conv2d
# with its own autograd: oneDNN's JIT kernels handle them in every layout and pass.
STOCK_MAX_KERNEL = 7
# NCHW beats channels_last for kernels up to NCHW_MAX_KERNEL on maps of at most
# NCHW_MAX_PIXELS (RepLKNet-31B stage 4, 2x1024x16x16, K=13: 2.5 ms NCHW, 9-32 ms
# channels_last); larger kernels or maps fall to NCHW's im2col path (seconds).
NCHW_MAX_KERNEL = 13
NCHW_MAX_PIXELS = 16 * 16


def choose_strategy(n: int, c: int, h: int, w: int, kh: int, kw: int) -> str:
    """Deterministic rule table for the forward (and input-gradient) convolution: NCHW for
    small kernels, or kernels up to :data:`NCHW_MAX_KERNEL` on maps up to
    :data:`NCHW_MAX_PIXELS`; channels_last oneDNN otherwise."""
    k = max(kh, kw)
    if k <= STOCK_MAX_KERNEL or (k <= NCHW_MAX_KERNEL and h * w <= NCHW_MAX_PIXELS):
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

    ``strategy`` None applies :func:`choose_strategy`.
    """
    n, c, h, w = x.shape
    kh, kw = weight.shape[-2:]
    if strategy is None:
        strategy = choose_strategy(n, c, h, w, kh, kw)
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


def weight_grad(x: torch.Tensor, grad_out: torch.Tensor, kh: int, kw: int) -> torch.Tensor:
    """fp32 weight gradient (C, 1, Kh, Kw), computed directly.

    gw[c, i, j] = sum over n, p, q of xpad[n, c, p + i, q + j] * g[n, c, p, q]: for each
    of the N*C planes, a correlation of the zero-padded input with the output gradient.
    That is a depthwise forward conv of the planes (channels_last, padding K//2) whose
    kernels are the output-gradient planes; the N results of each channel are summed.
    """
    n, c, h, w = x.shape
    if n == 0:
        return x.new_zeros((c, 1, kh, kw), dtype=torch.float32)
    planes = x.float().reshape(1, n * c, h, w).contiguous(memory_format=torch.channels_last)
    kernels = grad_out.float().reshape(n * c, 1, h, w)
    corr = F.conv2d(planes, kernels, None, 1, (kh // 2, kw // 2), 1, n * c)
    return corr.view(n, c, kh, kw).sum(0).unsqueeze(1)
