"""Throughput, memory and time profile of backbones (RepLKNet vs Swin-B).

Timing: a few warm-up iterations, then ``iters`` timed iterations (each synchronized on
CUDA); the reported time is the median. Memory: on CUDA the peak allocated bytes above
what was allocated before the run; on CPU the peak resident set size above the resident
size before the run (Linux only: the kernel's high-water mark is reset through
``/proc/self/clear_refs`` and glibc's free memory is returned with ``malloc_trim`` first),
so it is an estimate of the activations (+ gradients and optimizer state in a training
step) and None where the platform does not allow it.
"""
import ctypes
import gc
import statistics
import time
from contextlib import contextmanager, nullcontext
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import torch
import torch.nn as nn

SWIN_B = dict(embed_dims=128, depths=(2, 2, 18, 2), num_heads=(4, 8, 16, 32))


# --------------------------------------------------------------------------- models
def build_swin_b(img_size: int = 224, window_size: Optional[int] = None,
                 drop_path_rate: float = 0.) -> nn.Module:
    """mmseg's SwinTransformer with Swin-B settings (window 7 at 224, 12 at 384)."""
    from mmseg.models.backbones import SwinTransformer
    if window_size is None:
        window_size = 12 if img_size >= 384 else 7
    return SwinTransformer(
        pretrain_img_size=img_size, embed_dims=SWIN_B['embed_dims'],
        depths=list(SWIN_B['depths']), num_heads=list(SWIN_B['num_heads']),
        window_size=window_size, mlp_ratio=4, qkv_bias=True,
        drop_path_rate=drop_path_rate, patch_norm=True, out_indices=(0, 1, 2, 3))


def is_depthwise(m: nn.Module) -> bool:
    return (isinstance(m, nn.Conv2d) and m.groups > 1
            and m.groups == m.in_channels == m.out_channels)


def large_kernel_convs(model: nn.Module, min_kernel: int = 7) -> List[nn.Module]:
    """Depthwise convs with a kernel side >= ``min_kernel`` (the large kernels)."""
    return [m for m in model.modules()
            if is_depthwise(m) and max(m.kernel_size) >= min_kernel]


# --------------------------------------------------------------------------- memory
def _rss_kb(field: str) -> Optional[int]:
    try:
        with open('/proc/self/status') as f:
            for line in f:
                if line.startswith(field + ':'):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def _reset_cpu_peak() -> Optional[int]:
    gc.collect()
    try:
        ctypes.CDLL('libc.so.6').malloc_trim(0)
    except (OSError, AttributeError):
        pass
    try:
        with open('/proc/self/clear_refs', 'w') as f:
            f.write('5')
    except OSError:
        return None
    return _rss_kb('VmRSS')


class PeakMemory:
    """Context manager; ``.mb`` is the peak memory above the start (MB) or None."""

    def __init__(self, device: torch.device) -> None:
        self.device = torch.device(device)
        self.mb: Optional[float] = None

    def __enter__(self):
        if self.device.type == 'cuda':
            torch.cuda.synchronize(self.device)
            torch.cuda.reset_peak_memory_stats(self.device)
            self._start = torch.cuda.memory_allocated(self.device)
        else:
            self._start = _reset_cpu_peak()
        return self

    def __exit__(self, *exc):
        if self.device.type == 'cuda':
            torch.cuda.synchronize(self.device)
            self.mb = (torch.cuda.max_memory_allocated(self.device)
                       - self._start) / 2**20
        elif self._start is not None:
            peak = _rss_kb('VmHWM')
            if peak is not None:
                self.mb = max(peak - self._start, 0) / 1024
        return False


# --------------------------------------------------------------------------- timing
def _sync(device: torch.device) -> None:
    if device.type == 'cuda':
        torch.cuda.synchronize(device)


def time_iterations(fn: Callable[[], None], device, warmup: int = 2,
                    iters: int = 10) -> List[float]:
    """Seconds of each of ``iters`` calls of ``fn`` after ``warmup`` calls."""
    device = torch.device(device)
    for _ in range(warmup):
        fn()
    _sync(device)
    times = []
    for _ in range(iters):
        t0 = time.perf_counter()
        fn()
        _sync(device)
        times.append(time.perf_counter() - t0)
    return times


def _autocast(device: torch.device, amp: bool):
    if not amp:
        return nullcontext()
    dtype = torch.float16 if device.type == 'cuda' else torch.bfloat16
    return torch.autocast(device_type=device.type, dtype=dtype)


def _outputs(out) -> List[torch.Tensor]:
    if isinstance(out, torch.Tensor):
        return [out]
    return [o for o in out if isinstance(o, torch.Tensor)]


def make_step(model: nn.Module, x: torch.Tensor, mode: str, amp: bool = False
              ) -> Callable[[], None]:
    """A closure running one inference (``mode='infer'``, eval, no grad) or one training
    step (``'train'``: train mode, forward, mean of every output as the loss, backward,
    SGD step)."""
    device = x.device
    if mode == 'infer':
        model.eval()

        def step():
            with torch.no_grad(), _autocast(device, amp):
                model(x)
        return step
    if mode != 'train':
        raise ValueError(f'unknown mode {mode!r}')
    model.train()
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.SGD(params, lr=1e-4, momentum=0.9)

    def step():
        opt.zero_grad(set_to_none=True)
        with _autocast(device, amp):
            loss = sum(o.float().mean() for o in _outputs(model(x)))
        loss.backward()
        opt.step()
    return step


def benchmark(model: nn.Module, batch: int, shape: Sequence[int], mode: str = 'infer',
              device='cpu', amp: bool = False, warmup: int = 2, iters: int = 10,
              seed: int = 0) -> Dict:
    """Median time, throughput and peak memory of ``model`` on random input."""
    device = torch.device(device)
    model.to(device)
    gen = torch.Generator().manual_seed(seed)
    h, w = (shape[0], shape[0]) if len(shape) == 1 else shape[:2]
    x = torch.randn(batch, 3, h, w, generator=gen).to(device)
    step = make_step(model, x, mode, amp)
    with PeakMemory(device) as mem:
        times = time_iterations(step, device, warmup, iters)
    med = statistics.median(times)
    return dict(mode=mode, batch=batch, shape=(h, w), median_s=med,
                min_s=min(times), images_per_s=batch / med, peak_mem_mb=mem.mb,
                iters=iters)


# --------------------------------------------------------------------------- profile
@contextmanager
def _timing_hooks(modules: Sequence[nn.Module], device: torch.device, acc: List[float]):
    handles = []
    starts: Dict[int, float] = {}

    def pre(mod, inp):
        _sync(device)
        starts[id(mod)] = time.perf_counter()

    def post(mod, inp, out):
        _sync(device)
        acc[0] += time.perf_counter() - starts.pop(id(mod))

    for m in modules:
        handles.append(m.register_forward_pre_hook(pre))
        handles.append(m.register_forward_hook(post))
    try:
        yield
    finally:
        for h in handles:
            h.remove()


def dwconv_time_share(model: nn.Module, batch: int, shape: Sequence[int],
                      device='cpu', amp: bool = False, warmup: int = 2,
                      iters: int = 5, min_kernel: int = 7) -> Dict:
    """Share of inference time spent in the large-kernel depthwise convs (module hooks
    time each conv's forward, synchronized; the total is the same forward's time)."""
    device = torch.device(device)
    model.to(device).eval()
    convs = large_kernel_convs(model, min_kernel)
    h, w = (shape[0], shape[0]) if len(shape) == 1 else shape[:2]
    x = torch.randn(batch, 3, h, w).to(device)
    shares, totals = [], []
    with torch.no_grad(), _autocast(device, amp):
        for _ in range(warmup):
            model(x)
        for _ in range(iters):
            acc = [0.0]
            with _timing_hooks(convs, device, acc):
                _sync(device)
                t0 = time.perf_counter()
                model(x)
                _sync(device)
                total = time.perf_counter() - t0
            shares.append(acc[0] / total)
            totals.append(total)
    return dict(num_convs=len(convs), share=statistics.median(shares),
                median_s=statistics.median(totals))


Row = Dict[str, Any]


def speed_ratios(rows: List[Row], modes: Sequence[str]) -> List[Tuple[str, float]]:
    """Throughput ratios measured in the same run: every RepLKNet row against Swin-B
    (when measured), and the fast depthwise path against the stock one."""
    ratios = []
    for mode in modes:
        ref = [r for r in rows if r['mode'] == mode and r['model'].startswith('Swin')]
        for r in rows:
            if r['mode'] != mode or r['model'].startswith('Swin'):
                continue
            tag = f'{r["model"]} {r["form"]}/{r["dwconv"]} {mode}'
            if ref:
                ratios.append((f'{tag} vs Swin-B',
                               r['images_per_s'] / ref[0]['images_per_s']))
            if r['dwconv'] == 'fast':
                stock = [s for s in rows if s['mode'] == mode and s['dwconv'] == 'stock'
                         and s['form'] == r['form'] and s['model'] == r['model']]
                if stock:
                    ratios.append((f'{tag} vs stock',
                                   r['images_per_s'] / stock[0]['images_per_s']))
    return ratios


def format_report(rows: List[Row], ratios: List[Tuple[str, float]],
                  shares: List[Row]) -> str:
    """The timing table, the speed ratios and the depthwise convs' share, as text."""
    wid = max([len(r['model']) for r in rows] + [5]) + 2
    header = (f'{"model":<{wid}}{"form":<8}{"dwconv":<8}{"mode":<7}{"ms/iter":>10}'
              f'{"min ms":>9}{"images/s":>10}{"peak MB":>9}')
    lines = [header, '-' * len(header)]
    for r in rows:
        mem = '   n/a' if r['peak_mem_mb'] is None else f'{r["peak_mem_mb"]:8.0f}'
        lines.append(f'{r["model"]:<{wid}}{r["form"]:<8}{r["dwconv"]:<8}{r["mode"]:<7}'
                     f'{1000 * r["median_s"]:>10.1f}{1000 * r["min_s"]:>9.1f}'
                     f'{r["images_per_s"]:>10.2f}{mem:>9}')
    if ratios:
        lines.append('speed ratios (throughput / throughput):')
        lines += [f'  {tag:<58}{v:6.2f}x' for tag, v in ratios]
    if shares:
        lines.append('share of inference time in large-kernel depthwise convs:')
        lines += [f'  {s["model"]} {s["form"]}/{s["dwconv"]}: {100 * s["share"]:.1f}% '
                  f'({s["num_convs"]} convs, {1000 * s["median_s"]:.1f} ms/forward)'
                  for s in shares]
    return '\n'.join(lines)


__all__ = [
    'build_swin_b', 'large_kernel_convs', 'PeakMemory', 'time_iterations', 'make_step',
    'benchmark', 'dwconv_time_share', 'format_report', 'speed_ratios'
]
