"""CPU strategies for the stride-1 'same' depthwise convolution.

oneDNN's depthwise kernels are fast or slow depending on layout, kernel size and pass
(see docs/dwconv.md). Every pass here is expressed through one of three strategies:

* ``'nchw'``: stock ``F.conv2d`` on contiguous NCHW (fast for small kernels on small maps);
* ``'cl'``: stock ``F.conv2d`` on channels_last (oneDNN's JIT depthwise kernel, fast for
  large kernels; NCHW falls back to a slow im2col path there);
* ``'fft'``: a real FFT of size ``H + K//2`` (2,3,5-smooth), exact up to rounding.

The input gradient is the forward convolution of the output gradient with the kernel
flipped in both axes; the weight gradient is an FFT cross-correlation summed over the batch
in the frequency domain. All arithmetic is fp32; results are cast back to the input dtype
and returned in the input's memory format.
"""
from typing import Tuple

import torch
import torch.nn.functional as F

STRATEGIES = ('nchw', 'cl', 'fft')


def _smooth_size(n: int) -> int:
    """Smallest integer >= n whose prime factors are 2, 3 and 5 (fast FFT lengths)."""
    while True:
        m = n
        for p in (2, 3, 5):
            while m % p == 0:
                m //= p
        if m == 1:
            return n
        n += 1


def _fft_sizes(h: int, w: int, kh: int, kw: int) -> Tuple[int, int]:
    # A circular length of max(H + K//2, K) keeps the 'same' output and the lags
    # |d| <= K//2 free of aliasing (the zero padding beyond H absorbs every wrap-around).
    return _smooth_size(max(h + kh // 2, kh)), _smooth_size(max(w + kw // 2, kw))


def choose_strategy(n: int, c: int, h: int, w: int, kh: int, kw: int) -> str:
    """Deterministic rule table for the forward (and input-gradient) convolution.

    Derived from measurements on the 2-core dev machine (docs/dwconv.md): channels_last
    oneDNN for large kernels, the FFT once maps are large, NCHW for small kernels.
    """
    k = max(kh, kw)
    if k <= 7:
        return 'nchw'
    if h * w >= 64 * 64 and k >= 17:
        return 'fft'
    if k <= 13 and h * w <= 16 * 16:
        return 'nchw'
    return 'cl'


def prefers_stock(weight: torch.Tensor) -> bool:
    """Small kernels (<= 7): oneDNN's JIT kernels are fast in every layout and pass."""
    return max(weight.shape[-2:]) <= 7


def _as_format_of(y: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    if like.is_contiguous(memory_format=torch.channels_last) and not like.is_contiguous():
        return y.contiguous(memory_format=torch.channels_last)
    return y.contiguous()


def conv_same(x: torch.Tensor, weight: torch.Tensor, strategy: str = None) -> torch.Tensor:
    """fp32 result of the stride-1 'same' depthwise conv ``x`` (N,C,H,W) * ``weight`` (C,1,Kh,Kw).

    ``strategy`` None applies :func:`choose_strategy`.
    """
    n, c, h, w = x.shape
    kh, kw = weight.shape[-2:]
    if strategy is None:
        strategy = choose_strategy(n, c, h, w, kh, kw)
    xf, wf = x.float(), weight.float()
    if strategy == 'nchw':
        return F.conv2d(xf.contiguous(), wf, None, 1, (kh // 2, kw // 2), 1, c)
    if strategy == 'cl':
        xf = xf.contiguous(memory_format=torch.channels_last)
        return F.conv2d(xf, wf, None, 1, (kh // 2, kw // 2), 1, c)
    if strategy == 'fft':
        lh, lw = _fft_sizes(h, w, kh, kw)
        spec = torch.fft.rfft2(xf, s=(lh, lw))
        spec *= torch.fft.rfft2(wf.flip(-2, -1)[:, 0], s=(lh, lw))
        out = torch.fft.irfft2(spec, s=(lh, lw))
        return out[..., kh // 2:kh // 2 + h, kw // 2:kw // 2 + w]
    raise ValueError(f'unknown CPU strategy {strategy!r}; valid: {STRATEGIES}')


def forward(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor = None) -> torch.Tensor:
    """Forward pass; output in ``x``'s dtype and memory format."""
    out = conv_same(x, weight)
    if bias is not None:
        out = out + bias.float().view(1, -1, 1, 1)
    return _as_format_of(out.to(x.dtype), x)


def input_grad(grad_out: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """Input gradient: forward conv of ``grad_out`` with the kernel flipped in both axes."""
    return _as_format_of(conv_same(grad_out, weight.flip(-2, -1)).to(grad_out.dtype), grad_out)


def weight_grad(x: torch.Tensor, grad_out: torch.Tensor, kh: int, kw: int) -> torch.Tensor:
    """fp32 weight gradient (C, 1, Kh, Kw) by FFT cross-correlation summed over the batch."""
    h, w = x.shape[-2:]
    lh, lw = _fft_sizes(h, w, kh, kw)
    spec = torch.fft.rfft2(x.float(), s=(lh, lw))
    spec *= torch.fft.rfft2(grad_out.float(), s=(lh, lw)).conj()
    corr = torch.fft.irfft2(spec.sum(0), s=(lh, lw))
    # corr[d] = sum_p x[p + d] * g[p]; tap i has lag i - K//2.
    corr = torch.roll(corr, shifts=(kh // 2, kw // 2), dims=(-2, -1))
    return corr[:, None, :kh, :kw].contiguous()
