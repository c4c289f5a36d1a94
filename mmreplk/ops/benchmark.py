"""Timing the fast depthwise conv against stock ``F.conv2d`` in the same run, for
``tools/analysis_tools/benchmark_dwconv.py``: per shape (forward on NCHW and channels_last,
forward + backward), the RepLKNet-31B training step, and the report (text, markdown,
JSON records)."""
import platform
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from torch.utils.benchmark import Timer

from .dwconv import depthwise_conv2d, resolve_impl
from .kernel_model import STAGES_31B, workload_shapes

Case = Tuple[str, str, int, int, int, int, int]  # label, workload, N, C, H, W, K
BATCH = {'cpu': {224: 8, 512: 2}, 'cuda': {224: 64, 512: 16}}
DTYPES = {'fp32': torch.float32, 'bf16': torch.bfloat16, 'fp16': torch.float16}
COLUMNS = ['shape', 'dtype', 'backend', 'N', 'C', 'HxW', 'K', 'fwd stock', 'fwd stock CL',
           'fwd fast', 'fwd fast CL', 'fwd x', 'fwd GF/s', 'f+b stock', 'f+b fast', 'f+b x',
           'f+b GF/s']
ROOF_COLUMNS = ['fwd %peak', 'f+b %peak']
NOTE = ('Times in ms. fwd x = best stock layout / best fast layout (RepLKNet feeds '
        'channels_last on CPU); f+b x = stock NCHW / fast NCHW; GF/s count the taps inside '
        'the image; %peak = GF/s over the fp32 FMA peak.')


def stage_shapes(name: str, device: str) -> List[Case]:
    """The cases of a shape-set name such as '31b-224' (batch per device)."""
    arch, size = name.split('-')
    if arch != '31b':
        raise ValueError(f'unknown shape set {name!r}; use 31b-224, 31b-512, ...')
    size = int(size)
    n = BATCH[device].get(size, BATCH[device][224] if size < 512 else BATCH[device][512])
    return [(f'{name} s{i + 1}', '', n, c, size // 2**(i + 2), size // 2**(i + 2), k)
            for i, (c, k) in enumerate(STAGES_31B)]


def workload_cases(name: str) -> List[Case]:
    """The cases of a training workload (its batch sizes, non-square maps)."""
    return [(f'{name} s{i % 4 + 1} b{n}', name, n, c, h, w, k)
            for i, (n, c, h, w, k) in enumerate(workload_shapes(name))]


def inside_taps(size: int, k: int) -> int:
    """Sum over output positions of one axis of the kernel taps that land inside it."""
    p = k // 2
    return sum(min(size - 1, o + p) - max(0, o - p) + 1 for o in range(size))


def median_ms(fn: Callable[[], object], min_time: float) -> float:
    """Median ms per call of ``fn`` (one warm-up call, then blocked_autorange)."""
    fn()
    timer = Timer('fn()', globals={'fn': fn}, num_threads=torch.get_num_threads())
    return timer.blocked_autorange(min_run_time=min_time).median * 1e3


def peak_tflops(device: str, override: float) -> float:
    """fp32 FMA peak of the GPU in TFLOP/s (0 on CPU unless given)."""
    if override or device != 'cuda':
        return override
    sms = torch.cuda.get_device_properties(0).multi_processor_count
    return sms * 128 * 2 * 1.98e9 / 1e12


def bench_shape(n: int, c: int, h: int, w_: int, k: int, dtype: torch.dtype, device: str,
                min_time: float) -> Dict[str, float]:
    """Timings (ms) of the stock and fast forward / forward+backward at one shape."""
    x = torch.randn(n, c, h, w_, device=device, dtype=dtype, requires_grad=True)
    w = torch.randn(c, 1, k, k, device=device, dtype=dtype, requires_grad=True)
    g = torch.randn(n, c, h, w_, device=device, dtype=dtype)
    x_cl = x.detach().contiguous(memory_format=torch.channels_last)

    def stock(inp):
        return F.conv2d(inp, w, None, 1, k // 2, 1, c)

    def fast(inp):
        return depthwise_conv2d(inp, w)

    def fwd_bwd(op):
        def run():
            x.grad = w.grad = None
            op(x).backward(g)
        return run

    with torch.no_grad():
        res = dict(fwd_stock=median_ms(lambda: stock(x), min_time),
                   fwd_stock_cl=median_ms(lambda: stock(x_cl), min_time),
                   fwd_fast=median_ms(lambda: fast(x), min_time),
                   fwd_fast_cl=median_ms(lambda: fast(x_cl), min_time))
    res['fb_stock'] = median_ms(fwd_bwd(stock), min_time)
    res['fb_fast'] = median_ms(fwd_bwd(fast), min_time)
    return res


def shape_row(label: str, dname: str, n: int, c: int, h: int, w: int, k: int,
              r: Dict[str, float], device: str, peak: float) -> List[str]:
    """One table row (strings, in the order of COLUMNS [+ ROOF_COLUMNS])."""
    probe = torch.empty(0, device=device, dtype=DTYPES[dname])
    flops = 2 * n * c * inside_taps(h, k) * inside_taps(w, k)
    best_fast = min(r['fwd_fast'], r['fwd_fast_cl'])
    gf_f, gf_fb = flops / best_fast / 1e6, 3 * flops / r['fb_fast'] / 1e6
    backend = resolve_impl(None, probe, min(k, 2 * max(h, w) - 1))  # cropped to the map
    row = [label, dname, backend, str(n), str(c), f'{h}x{w}', str(k),
           f'{r["fwd_stock"]:.2f}', f'{r["fwd_stock_cl"]:.2f}', f'{r["fwd_fast"]:.2f}',
           f'{r["fwd_fast_cl"]:.2f}',
           f'{min(r["fwd_stock"], r["fwd_stock_cl"]) / best_fast:.2f}', f'{gf_f:.1f}',
           f'{r["fb_stock"]:.1f}', f'{r["fb_fast"]:.1f}', f'{r["fb_stock"] / r["fb_fast"]:.2f}',
           f'{gf_fb:.1f}']
    if peak:
        row += [f'{gf_f / peak / 10:.1f}%', f'{gf_fb / peak / 10:.1f}%']
    return row


def train_step_ms(stock: bool, device: str, dtype: torch.dtype, batch: int, size: int,
                  min_time: float) -> float:
    """Median ms of one RepLKNet-31B training step, stock (NCHW and F.conv2d, as the
    reference implementations run it) or with mmreplk's defaults."""
    from mmreplk.models import RepLKNet
    kwargs = dict(dwconv_impl='torch', channels_last=False) if stock else {}
    model = RepLKNet(arch='31B', **kwargs).to(device)
    opt = torch.optim.SGD(model.parameters(), lr=1e-3)
    x = torch.randn(batch, 3, size, size, device=device)

    def step():
        opt.zero_grad(set_to_none=True)
        with torch.autocast(device, dtype=dtype, enabled=dtype != torch.float32):
            outs = model(x)
            loss = sum(o.float().mean() for o in outs)
        loss.backward()
        opt.step()

    return median_ms(step, min_time)


def train_step_line(device: str, batch: Optional[int], size: Optional[int],
                    min_time: float) -> str:
    """The RepLKNet-31B training-step comparison, or why it was skipped."""
    try:
        import mmreplk.models  # noqa: F401
    except ImportError as err:
        return ('RepLKNet-31B train step: skipped: it needs mmreplk.models, i.e. mmengine '
                f'and mmcv (mmcv-lite is enough), which are not importable here ({err})')
    batch = batch or (2 if device == 'cpu' else 16)
    size = size or (256 if device == 'cpu' else 512)
    dtype = torch.float32 if device == 'cpu' else torch.bfloat16
    stock = train_step_ms(True, device, dtype, batch, size, min_time)
    fast = train_step_ms(False, device, dtype, batch, size, min_time)
    return (f'RepLKNet-31B train step, batch {batch} @{size}, {str(dtype)[6:]}: '
            f'stock {stock:.0f} ms, fast {fast:.0f} ms, speedup {stock / fast:.2f}x')


def environment(device: str) -> str:
    """One line: device, threads, torch / triton / CUDA versions."""
    try:
        import triton
        triton_version = triton.__version__
    except ImportError:
        triton_version = 'not installed'
    name = (torch.cuda.get_device_name(0) if device == 'cuda'
            else platform.processor() or platform.machine())
    return (f'device {device} ({name}), threads {torch.get_num_threads()}, '
            f'torch {torch.__version__}, CUDA {torch.version.cuda}, triton {triton_version}')


def markdown(env: str, command: str, header: List[str], rows: List[List[str]],
             e2e: Optional[str]) -> str:
    """The report as markdown: environment, command, table, notes, training step."""
    lines = ['## Depthwise conv benchmark', '', f'{env}', '', f'`{command}`', '']
    if rows:
        lines += ['| ' + ' | '.join(header) + ' |', '|' + '---|' * len(header)]
        lines += ['| ' + ' | '.join(row) + ' |' for row in rows]
        lines += ['', NOTE, '']
    if e2e:
        lines += [e2e, '']
    return '\n'.join(lines)


def cases(workloads: Sequence[str], shape_sets: Sequence[str], device: str) -> List[Case]:
    """The workloads' cases, then the shape sets'."""
    out = [c for name in workloads for c in workload_cases(name)]
    return out + [c for name in shape_sets for c in stage_shapes(name, device)]


def records(header: List[str], rows: List[List[str]], workloads: List[str]) -> List[dict]:
    """The rows as JSON records: the columns, with batch and workload."""
    out = []
    for row, workload in zip(rows, workloads):
        rec = dict(zip(header, row))
        rec.update(batch=int(rec['N']), workload=workload)
        out.append(rec)
    return out


__all__ = ['COLUMNS', 'DTYPES', 'NOTE', 'ROOF_COLUMNS', 'bench_shape', 'cases', 'environment',
           'markdown', 'peak_tflops', 'records', 'shape_row', 'stage_shapes',
           'train_step_line', 'workload_cases']
