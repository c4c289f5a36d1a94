"""Public depthwise large-kernel convolution: dispatch, PyTorch custom ops, ``nn.Conv2d`` module.

Scope of the fast paths: stride 1, 'same' padding (K//2), odd kernel sizes (square or
rectangular), weight (C, 1, Kh, Kw) with C = input channels, zero padding, non-empty
inputs. Anything else runs stock ``F.conv2d``. Implementations (``impl`` argument or
``$MMREPLK_DWCONV``):

* ``'auto'``: Triton on CUDA tensors when Triton is importable (kernels >= 7; smaller ones
  go to cuDNN through stock PyTorch), the CPU path on CPU tensors (kernels > 7), stock
  otherwise. If a Triton kernel fails (compile, launch, resources), a warning names the
  error and stock ``F.conv2d`` runs that case from then on;
* ``'torch'``: stock ``F.conv2d``;
* ``'triton'``: the Triton kernels (CUDA tensors, or CPU tensors under
  ``TRITON_INTERPRET=1``); their errors are raised;
* ``'cpu'``: the CPU strategies of :mod:`mmreplk.ops.dwconv_cpu`.

On CUDA, 'triton' means the tensor-core kernels (``dwconv_triton_tc``) for bf16/fp16, and
for fp32 when PyTorch's convolutions may use TF32; the CUDA-core kernels
(``dwconv_triton``) otherwise (:func:`select_backend`).

The fast paths are the custom ops ``mmreplk::dwconv2d`` (forward),
``mmreplk::dwconv2d_input_grad`` and ``mmreplk::dwconv2d_weight_grad`` (backward), with
fake kernels and an autograd formula, so ``torch.compile`` sees one op per convolution (the
``impl`` string is an op argument; the backend is chosen when the op runs). Tracers and
exporters (``torch.jit.trace``, both ``torch.onnx.export`` exporters, ``torch.export``,
mmengine's FlopAnalyzer, mmdeploy) record stock ``F.conv2d`` instead
(:func:`lowers_to_stock`): a standard convolution that every consumer of their graphs knows.
"""
import importlib
import importlib.util
import os
import warnings
from typing import Callable, Optional, Set, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F

from mmreplk.errors import ConfigError

from . import dwconv_cpu

IMPLS = ('auto', 'torch', 'triton', 'cpu')
BACKENDS = ('torch', 'cpu', 'triton', 'triton_tc')
ENV_VAR = 'MMREPLK_DWCONV'
_MODULES = {'cpu': 'mmreplk.ops.dwconv_cpu', 'triton': 'mmreplk.ops.dwconv_triton',
            'triton_tc': 'mmreplk.ops.dwconv_triton_tc'}
_TRITON = importlib.util.find_spec('triton') is not None
_FAILED: Set[Tuple] = set()  # (pass, dtype, Kh, Kw) whose Triton kernel failed under 'auto'
# Smallest kernel 'auto' sends to Triton on CUDA. Not a measurement (no GPU run exists):
# cuDNN ships dedicated 3x3 / 5x5 depthwise kernels, the Triton ones target RepLKNet's
# large kernels (docs/dwconv.md, "Selecting the implementation").
TRITON_MIN_KERNEL = 7
# dtypes the fast kernels compute (sums in fp32); float64 and others run stock F.conv2d
FAST_DTYPES = (torch.float32, torch.float16, torch.bfloat16)


def triton_available() -> bool:
    """Whether the ``triton`` package can be imported."""
    return _TRITON


def conv_allows_tf32() -> bool:
    """PyTorch's rule for TF32 in (cuDNN) convolutions: ``cudnn.conv.fp32_precision ==
    'tf32'`` (torch >= 2.9, where ``cudnn.allow_tf32``, default True, sets it), else
    ``cudnn.allow_tf32``."""
    conv = getattr(torch.backends.cudnn, 'conv', None)
    if conv is not None and hasattr(conv, 'fp32_precision'):
        return conv.fp32_precision == 'tf32'
    return bool(torch.backends.cudnn.allow_tf32)


def _check_impl(impl: str, source: str) -> str:
    if impl not in IMPLS:
        raise ConfigError(f'invalid depthwise conv impl {impl!r} (from {source}); '
                          f'valid values: {", ".join(IMPLS)}')
    return impl


def _impl_value(impl: Optional[str]) -> str:
    if impl is None:
        return _check_impl(os.environ.get(ENV_VAR, 'auto'), f'${ENV_VAR}')
    return _check_impl(impl, 'the impl argument')


def _interpret() -> bool:
    return os.environ.get('TRITON_INTERPRET', '0') == '1'


def _device_type(x: torch.Tensor) -> str:
    """Device type used for dispatch (a seam: tests route CPU tensors as 'cuda')."""
    return x.device.type


def _family(impl: str, device_type: str, kernel_size: int, triton: bool,
            interpret: bool) -> str:
    """'torch', 'cpu' or 'triton'; RuntimeError for an explicit impl that cannot run."""
    if impl == 'triton':
        if not triton:
            raise RuntimeError("impl='triton' was requested but triton is not installed")
        if not (device_type == 'cuda' or (interpret and device_type == 'cpu')):
            raise RuntimeError(f"impl='triton' needs a CUDA tensor (got {device_type}); "
                               'CPU tensors run it only under TRITON_INTERPRET=1')
        return 'triton'
    if impl == 'cpu' and device_type != 'cpu':
        raise RuntimeError(f"impl='cpu' needs a CPU tensor (got {device_type})")
    if impl in ('cpu', 'auto') and device_type == 'cpu':
        return 'torch' if dwconv_cpu.prefers_stock(kernel_size) else 'cpu'
    if (impl == 'auto' and device_type == 'cuda' and triton
            and kernel_size >= TRITON_MIN_KERNEL):
        return 'triton'
    return 'torch'


def select_backend(impl: str, device_type: str, dtype: torch.dtype, kernel_size: int, *,
                   triton: bool, tensor_cores: bool, allow_tf32: bool,
                   interpret: bool = False) -> str:
    """The backend of :data:`BACKENDS` that runs a fast-path call.

    Pure: the environment comes in as arguments. ``impl`` is a concrete value of
    :data:`IMPLS`; ``kernel_size`` the larger kernel side after :func:`crop_to_map`;
    ``triton``: Triton importable; ``tensor_cores``: the tensor-core module importable and
    handling this kernel; ``allow_tf32``: :func:`conv_allows_tf32`; ``interpret``:
    ``TRITON_INTERPRET=1``. Raises RuntimeError when an explicit impl cannot run on
    ``device_type``.
    """
    family = _family(impl, device_type, kernel_size, triton, interpret)
    if family == 'triton' and device_type == 'cuda' and tensor_cores and (
            dtype in (torch.bfloat16, torch.float16)
            or (dtype == torch.float32 and allow_tf32)):
        return 'triton_tc'
    return family


def _module(name: str):
    return importlib.import_module(_MODULES[name])


def _tensor_cores(kh: int, kw: int) -> bool:
    """Whether the tensor-core module exists and handles a Kh x Kw kernel (its import
    errors propagate: under 'auto' they are a backend failure like any other)."""
    if importlib.util.find_spec(_MODULES['triton_tc']) is None:
        return False
    supports = getattr(_module('triton_tc'), 'supports', None)
    return supports is None or supports(kh, kw)


def resolve_impl(impl: Optional[str], x: torch.Tensor, kernel_size: int = 31) -> str:
    """The backend (one of :data:`BACKENDS`) that runs ``x`` with a ``kernel_size`` kernel.

    ``impl`` None reads ``$MMREPLK_DWCONV`` (default 'auto'). Raises ValueError for an
    unknown value and RuntimeError when 'triton' or 'cpu' cannot run on ``x``.
    """
    device_type = _device_type(x)
    impl = _impl_value(impl)
    family = _family(impl, device_type, kernel_size, triton_available(), _interpret())
    return select_backend(
        impl, device_type, x.dtype, kernel_size, triton=triton_available(),
        tensor_cores=family == 'triton' and _tensor_cores(kernel_size, kernel_size),
        allow_tf32=conv_allows_tf32(), interpret=_interpret())


def lowers_to_stock() -> bool:
    """Whether a tracer or exporter is recording this call (``torch.jit`` tracing, which the
    TorchScript ONNX exporter, mmengine's FlopAnalyzer and mmdeploy use, or ``torch.export``,
    which the dynamo ONNX exporter uses): it then runs stock ``F.conv2d``, so the graph holds
    a standard convolution rather than the ``mmreplk::`` op only this package can run."""
    return torch.jit.is_tracing() or torch.compiler.is_exporting()


def check_shapes(x: torch.Tensor, weight: torch.Tensor,
                 bias: Optional[torch.Tensor] = None) -> None:
    """Raise :class:`ConfigError` unless ``x`` is (N, C, H, W), ``weight`` (C, 1, Kh, Kw)
    and ``bias`` None or (C,): the shapes of a depthwise convolution (any other weight
    would make ``F.conv2d`` a grouped convolution with other output channels)."""
    if x.dim() != 4:
        raise ConfigError(f'depthwise conv: the input must be (N, C, H, W), got shape '
                          f'{tuple(x.shape)}')
    c = x.shape[1]
    if weight.dim() != 4 or tuple(weight.shape[:2]) != (c, 1):
        raise ConfigError(f'depthwise conv: the weight must be (C, 1, Kh, Kw) with C = '
                          f'{c} input channels, got shape {tuple(weight.shape)}')
    if bias is not None and tuple(bias.shape) != (c, ):
        raise ConfigError(f'depthwise conv: the bias must be ({c},), got shape '
                          f'{tuple(bias.shape)}')


def in_scope(x: torch.Tensor, weight: torch.Tensor,
             bias: Optional[torch.Tensor] = None) -> bool:
    """Whether a fast path handles ``x`` with ``weight`` and ``bias`` (shapes as
    :func:`check_shapes` requires), 'same' padding: odd kernel, one dtype of
    :data:`FAST_DTYPES` and one device, non-empty ``x``."""
    return (x.numel() > 0 and weight.shape[2] % 2 == 1 and weight.shape[3] % 2 == 1
            and x.dtype == weight.dtype and x.device == weight.device
            and x.dtype in FAST_DTYPES
            and (bias is None or (bias.dtype == x.dtype and bias.device == x.device)))


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


def _stock(x, weight, bias):
    kh, kw = weight.shape[-2:]
    return F.conv2d(x, weight, bias, 1, (kh // 2, kw // 2), 1, x.shape[1])


def _run(kind: str, impl: str, x: torch.Tensor, kh: int, kw: int,
         fast: Callable, stock: Callable) -> torch.Tensor:
    """Run pass ``kind`` on the backend chosen for ``x``: ``fast(module)`` or ``stock()``.

    Under 'auto' a failing Triton backend (import, compile, launch, resources; not out of
    memory) warns once and stock runs this (pass, dtype, Kh, Kw) from then on. dtypes
    outside :data:`FAST_DTYPES` (float64) run stock, in their own precision.
    """
    device_type = _device_type(x)
    family = _family(impl, device_type, max(kh, kw), triton_available(), _interpret())
    key = (kind, x.dtype, kh, kw)
    guarded = impl == 'auto' and family == 'triton'
    with torch.autocast(x.device.type, enabled=False):
        if family == 'torch' or x.dtype not in FAST_DTYPES or (guarded and key in _FAILED):
            return stock()
        try:
            if family == 'triton' and device_type == 'cuda':
                family = select_backend(impl, device_type, x.dtype, max(kh, kw),
                                        triton=True, tensor_cores=_tensor_cores(kh, kw),
                                        allow_tf32=conv_allows_tf32())
            return fast(_module(family))
        except torch.OutOfMemoryError:
            raise
        except Exception as err:
            if not guarded:
                raise
            _FAILED.add(key)
            warnings.warn(
                f'mmreplk depthwise conv: the Triton {kind} ({family}) failed for '
                f'{str(x.dtype)[6:]} {kh}x{kw} kernels with {type(err).__name__}: {err}; '
                'stock F.conv2d runs this case from now on', RuntimeWarning, stacklevel=2)
            return stock()


# ----------------------------------------------------------------------- custom ops
def _check_op_args(x: torch.Tensor, weight: torch.Tensor,
                   bias: Optional[torch.Tensor]) -> None:
    """The op's own scope (it is callable directly as ``torch.ops.mmreplk.dwconv2d``)."""
    check_shapes(x, weight, bias)
    kh, kw = weight.shape[-2:]
    if kh % 2 == 0 or kw % 2 == 0:
        raise ConfigError(f'mmreplk::dwconv2d: the kernel must be odd in both axes, got '
                          f'{kh}x{kw} (depthwise_conv2d runs F.conv2d for even kernels)')
    for name, t in (('weight', weight), ('bias', bias)):
        if t is not None and (t.dtype, t.device) != (x.dtype, x.device):
            raise ConfigError(f'mmreplk::dwconv2d: the {name} is {t.dtype} on {t.device}, '
                              f'the input {x.dtype} on {x.device}')


@torch.library.custom_op('mmreplk::dwconv2d', mutates_args=())
def _dwconv2d(x: torch.Tensor, weight: torch.Tensor, bias: Optional[torch.Tensor],
              impl: str) -> torch.Tensor:
    """Forward op: output in ``x``'s dtype and memory format."""
    _check_op_args(x, weight, bias)
    kh, kw = weight.shape[-2:]
    out = _run('forward', impl, x, kh, kw, lambda m: m.forward(x, weight, bias),
               lambda: _stock(x, weight, bias))
    return out.contiguous(memory_format=dwconv_cpu.memory_format_of(x))


@_dwconv2d.register_fake
def _dwconv2d_fake(x, weight, bias, impl):
    return torch.empty_like(x, memory_format=dwconv_cpu.memory_format_of(x))


@torch.library.custom_op('mmreplk::dwconv2d_input_grad', mutates_args=())
def _input_grad(grad_out: torch.Tensor, weight: torch.Tensor, impl: str) -> torch.Tensor:
    """Input gradient op: in ``grad_out``'s dtype and memory format."""
    _check_op_args(grad_out, weight, None)
    kh, kw = weight.shape[-2:]

    def stock():
        return torch.nn.grad.conv2d_input(grad_out.shape, weight, grad_out, 1,
                                          (kh // 2, kw // 2), 1, weight.shape[0])

    out = _run('input grad', impl, grad_out, kh, kw,
               lambda m: m.input_grad(grad_out, weight), stock)
    return out.contiguous(memory_format=dwconv_cpu.memory_format_of(grad_out))


@_input_grad.register_fake
def _input_grad_fake(grad_out, weight, impl):
    return torch.empty_like(grad_out, memory_format=dwconv_cpu.memory_format_of(grad_out))


@torch.library.custom_op('mmreplk::dwconv2d_weight_grad', mutates_args=())
def _weight_grad(x: torch.Tensor, grad_out: torch.Tensor, kh: int, kw: int,
                 impl: str) -> torch.Tensor:
    """Weight gradient op: contiguous (C, 1, Kh, Kw) in ``x``'s dtype."""
    if grad_out.shape != x.shape or kh % 2 == 0 or kw % 2 == 0 or x.dim() != 4:
        raise ConfigError(f'mmreplk::dwconv2d_weight_grad: needs (N, C, H, W) input and '
                          f'output gradient of one shape and an odd kernel, got '
                          f'{tuple(x.shape)}, {tuple(grad_out.shape)}, {kh}x{kw}')

    def stock():
        return torch.nn.grad.conv2d_weight(x, (x.shape[1], 1, kh, kw), grad_out, 1,
                                           (kh // 2, kw // 2), 1, x.shape[1])

    out = _run('weight grad', impl, x, kh, kw,
               lambda m: m.weight_grad(x, grad_out, kh, kw), stock)
    return out.to(x.dtype).contiguous()


@_weight_grad.register_fake
def _weight_grad_fake(x, grad_out, kh, kw, impl):
    return x.new_empty((x.shape[1], 1, kh, kw))


def _setup_context(ctx, inputs, output):
    x, weight, bias, impl = inputs
    ctx.save_for_backward(x, weight)
    ctx.impl = impl


def _backward(ctx, grad_out):
    x, weight = ctx.saved_tensors
    grad_out = grad_out.to(x.dtype).contiguous(memory_format=dwconv_cpu.memory_format_of(x))
    gx = gw = gb = None
    if ctx.needs_input_grad[0]:
        gx = torch.ops.mmreplk.dwconv2d_input_grad(grad_out, weight, ctx.impl)
    if ctx.needs_input_grad[1]:
        kh, kw = weight.shape[-2:]
        gw = torch.ops.mmreplk.dwconv2d_weight_grad(x, grad_out, kh, kw, ctx.impl)
    if ctx.needs_input_grad[2]:
        gb = grad_out.sum((0, 2, 3), dtype=torch.float32).to(x.dtype)
    return gx, gw, gb, None


_dwconv2d.register_autograd(_backward, setup_context=_setup_context)


# ----------------------------------------------------------------------- public API
def depthwise_conv2d(x: torch.Tensor, weight: torch.Tensor,
                     bias: Optional[torch.Tensor] = None, *,
                     impl: Optional[str] = None) -> torch.Tensor:
    """Stride-1 'same' depthwise convolution of ``x`` (N, C, H, W) by ``weight`` (C, 1, Kh, Kw).

    ``impl``: one of :data:`IMPLS`; None reads ``$MMREPLK_DWCONV`` (default 'auto').
    Matches ``F.conv2d(x, weight, bias, 1, (Kh//2, Kw//2), 1, C)`` including autograd and
    autocast; out-of-scope arguments (see :func:`in_scope`) and calls recorded by a tracer
    or exporter (see :func:`lowers_to_stock`) run exactly that. Shapes that are not a
    depthwise convolution raise :class:`ConfigError` (:func:`check_shapes`).
    """
    impl = _impl_value(impl)
    if torch.jit.is_tracing():
        with warnings.catch_warnings():  # the trace fixes the channel count, as the check does
            warnings.simplefilter('ignore', torch.jit.TracerWarning)
            check_shapes(x, weight, bias)
    else:
        check_shapes(x, weight, bias)
    device_type = _device_type(x)
    xs, ws, bs = x, weight, bias
    if (torch.amp.is_autocast_available(x.device.type)  # not for meta tensors
            and torch.is_autocast_enabled(x.device.type)):  # cast as F.conv2d would
        dtype = torch.get_autocast_dtype(x.device.type)
        xs, ws = x.to(dtype), weight.to(dtype)
        bs = bias.to(dtype) if bias is not None else None
    if impl == 'torch' or lowers_to_stock() or not in_scope(xs, ws, bs):
        _family(impl, device_type, 0, triton_available(), _interpret())  # explicit impl check
        return _stock(x, weight, bias)
    ws = crop_to_map(ws, xs.shape[-2], xs.shape[-1])
    family = _family(impl, device_type, max(ws.shape[-2:]), triton_available(), _interpret())
    if family == 'torch':  # stock is fastest for this (cropped) kernel
        return _stock(xs, ws, bs)
    return torch.ops.mmreplk.dwconv2d(xs, ws, bs, impl)


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
        if not self.uses_fast_path() or x.dim() != 4:  # nn.Conv2d also takes (C, H, W)
            return super().forward(x)
        return depthwise_conv2d(x, self.weight, self.bias, impl=self.impl)
