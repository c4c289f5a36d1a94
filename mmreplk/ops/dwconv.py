"""Public depthwise large-kernel convolution: dispatch, autograd and the ``nn.Conv2d`` module.

Scope of the fast paths: stride 1, 'same' padding (K//2), odd kernel sizes (square or
rectangular), weight (C, 1, Kh, Kw) with C = input channels, zero padding. Anything else
runs stock ``F.conv2d``. Implementations (``impl`` argument or ``$MMREPLK_DWCONV``):

* ``'auto'``: Triton on CUDA tensors when Triton is importable (kernels >= 7; smaller ones
  go to cuDNN through stock PyTorch), the CPU path on CPU tensors, stock otherwise;
* ``'torch'``: stock ``F.conv2d``;
* ``'triton'``: the Triton kernels (CUDA tensors, or CPU tensors under ``TRITON_INTERPRET=1``);
* ``'cpu'``: the CPU strategies of :mod:`mmreplk.ops.dwconv_cpu`.
"""
import importlib.util
import os
from typing import Optional

import torch
import torch.nn as nn
import torch.nn.functional as F

from . import dwconv_cpu

IMPLS = ('auto', 'torch', 'triton', 'cpu')
ENV_VAR = 'MMREPLK_DWCONV'


def triton_available() -> bool:
    """Whether the ``triton`` package can be imported."""
    return importlib.util.find_spec('triton') is not None


def _triton_backend():
    from . import dwconv_triton
    return dwconv_triton


def _check_impl(impl: str, source: str) -> str:
    if impl not in IMPLS:
        raise ValueError(f'invalid depthwise conv impl {impl!r} (from {source}); '
                         f'valid values: {", ".join(IMPLS)}')
    return impl


def resolve_impl(impl: Optional[str], x: torch.Tensor, kernel_size: int = 31) -> str:
    """The concrete implementation ('torch', 'triton' or 'cpu') used for ``x``.

    ``impl`` None reads ``$MMREPLK_DWCONV`` (default 'auto'). Raises ValueError for an
    unknown value and RuntimeError when 'triton' or 'cpu' cannot run on ``x``.
    """
    if impl is None:
        impl = _check_impl(os.environ.get(ENV_VAR, 'auto'), f'${ENV_VAR}')
    else:
        _check_impl(impl, 'the impl argument')
    if impl == 'auto':
        if x.is_cuda and triton_available() and kernel_size >= 7:
            return 'triton'
        return 'cpu' if x.device.type == 'cpu' else 'torch'
    if impl == 'triton':
        if not triton_available():
            raise RuntimeError("impl='triton' was requested but triton is not installed")
        interpret = os.environ.get('TRITON_INTERPRET', '0') == '1'
        if not (x.is_cuda or (interpret and x.device.type == 'cpu')):
            raise RuntimeError(f"impl='triton' needs a CUDA tensor (got {x.device}); "
                               'CPU tensors run it only under TRITON_INTERPRET=1')
    if impl == 'cpu' and x.device.type != 'cpu':
        raise RuntimeError(f"impl='cpu' needs a CPU tensor (got {x.device})")
    return impl


def in_scope(x: torch.Tensor, weight: torch.Tensor) -> bool:
    """Whether a fast path handles ``x`` (N,C,H,W) with ``weight`` (C,1,Kh,Kw), 'same' padding."""
    return (x.dim() == 4 and weight.dim() == 4 and weight.shape[1] == 1
            and weight.shape[0] == x.shape[1] and x.shape[1] > 0
            and weight.shape[2] % 2 == 1 and weight.shape[3] % 2 == 1
            and x.dtype == weight.dtype and x.device == weight.device
            and x.dtype in (torch.float32, torch.float16, torch.bfloat16))


def crop_to_map(weight: torch.Tensor, h: int, w: int) -> torch.Tensor:
    """The central (min(Kh, 2H-1), min(Kw, 2W-1)) taps of ``weight``: on an H x W map,
    taps further than H-1 rows (W-1 columns) from the centre never meet the image, so the
    'same' convolution is unchanged (a view: their gradient is zero, as it should be)."""
    kh, kw = weight.shape[-2:]
    ch, cw = min(kh, 2 * h - 1), min(kw, 2 * w - 1)
    if (ch, cw) == (kh, kw):
        return weight
    top, left = (kh - ch) // 2, (kw - cw) // 2
    return weight[..., top:top + ch, left:left + cw]


class _DepthwiseConvFn(torch.autograd.Function):

    @staticmethod
    def forward(ctx, x, weight, bias, backend):
        ctx.save_for_backward(x, weight)
        ctx.backend = backend
        ctx.has_bias = bias is not None
        return backend.forward(x, weight, bias)

    @staticmethod
    def backward(ctx, grad_out):
        x, weight = ctx.saved_tensors
        backend = ctx.backend
        grad_out = grad_out.to(x.dtype)
        gx = gw = gb = None
        if ctx.needs_input_grad[0]:
            gx = backend.input_grad(grad_out, weight)
        if ctx.needs_input_grad[1]:
            kh, kw = weight.shape[-2:]
            gw = backend.weight_grad(x, grad_out, kh, kw).to(weight.dtype)
        if ctx.has_bias and ctx.needs_input_grad[2]:
            gb = grad_out.sum((0, 2, 3), dtype=torch.float32).to(weight.dtype)
        return gx, gw, gb, None


def _stock(x, weight, bias):
    kh, kw = weight.shape[-2:]
    groups = x.shape[1] // weight.shape[1] if weight.dim() == 4 and weight.shape[1] else 1
    return F.conv2d(x, weight, bias, 1, (kh // 2, kw // 2), 1, groups)


def depthwise_conv2d(x: torch.Tensor, weight: torch.Tensor,
                     bias: Optional[torch.Tensor] = None, *,
                     impl: Optional[str] = None) -> torch.Tensor:
    """Stride-1 'same' depthwise convolution of ``x`` (N, C, H, W) by ``weight`` (C, 1, Kh, Kw).

    ``impl``: one of :data:`IMPLS`; None reads ``$MMREPLK_DWCONV`` (default 'auto').
    Matches ``F.conv2d(x, weight, bias, 1, (Kh//2, Kw//2), 1, C)`` including autograd and
    autocast; out-of-scope arguments run exactly that.
    """
    kernel_size = max(weight.shape[-2:]) if weight.dim() == 4 else 0
    backend_name = resolve_impl(impl, x, kernel_size)
    device_type = x.device.type
    autocast = torch.is_autocast_enabled(device_type)
    if autocast and backend_name != 'torch':
        dtype = torch.get_autocast_dtype(device_type)
        x, weight = x.to(dtype), weight.to(dtype)
        bias = bias.to(dtype) if bias is not None else None
    if backend_name == 'torch' or not in_scope(x, weight):
        return _stock(x, weight, bias)
    weight = crop_to_map(weight, x.shape[-2], x.shape[-1])
    backend = _triton_backend() if backend_name == 'triton' else dwconv_cpu
    if backend is dwconv_cpu and dwconv_cpu.prefers_stock(weight):
        return _stock(x, weight, bias)
    with torch.autocast(device_type, enabled=False):
        needs_grad = torch.is_grad_enabled() and any(
            t is not None and t.requires_grad for t in (x, weight, bias))
        if not needs_grad:  # inference: skip the autograd node
            return backend.forward(x, weight, bias)
        return _DepthwiseConvFn.apply(x, weight, bias, backend)


class DepthwiseConv2d(nn.Conv2d):
    """``nn.Conv2d`` with the fast depthwise path; state-dict compatible with ``nn.Conv2d``.

    The fast path runs when stride 1, dilation 1, groups == in == out channels, padding
    K//2 per axis, odd kernel and zero padding mode; otherwise ``nn.Conv2d.forward``.
    ``impl`` as in :func:`depthwise_conv2d` (checked here, resolved per call).
    """

    def __init__(self, *args, impl: Optional[str] = None, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        if impl is not None:
            _check_impl(impl, 'the impl argument')
        self.impl = impl

    def uses_fast_path(self) -> bool:
        """Whether this module's arguments are in the fast paths' scope."""
        kh, kw = self.kernel_size
        same = self.padding == 'same' or tuple(self.padding) == (kh // 2, kw // 2)
        return (tuple(self.stride) == (1, 1) and tuple(self.dilation) == (1, 1)
                and self.groups == self.in_channels == self.out_channels and same
                and kh % 2 == 1 and kw % 2 == 1 and self.padding_mode == 'zeros')

    def extra_repr(self) -> str:
        return super().extra_repr() + (f', impl={self.impl!r}' if self.impl else '')

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.uses_fast_path():
            return super().forward(x)
        return depthwise_conv2d(x, self.weight, self.bias, impl=self.impl)
