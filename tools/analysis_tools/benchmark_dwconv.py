"""Benchmark the fast depthwise conv (mmreplk.ops) against stock F.conv2d.

For RepLKNet-31B's four stage shapes in named training workloads (``--workload``, e.g.
upernet-ade20k-512 at batch 2; the default on CUDA: all of them) or shape sets
(``--shapes 31b-224``, the default on CPU), times forward and forward+backward of stock
``F.conv2d`` and of ``depthwise_conv2d`` in the same run (the forward of both on NCHW and on
channels_last inputs), and prints ms, speedups and GFLOP/s (FLOPs = 2 x MACs of the taps that
fall inside the image; forward+backward counts three times that). On CUDA it also prints the
fraction of the fp32-FMA peak (SMs x 128 FMA/clk x 1.98 GHz unless --peak-tflops). Times are
medians of ``torch.utils.benchmark.Timer.blocked_autorange`` after one warm-up call
(Triton autotuning, oneDNN primitive creation).

The end-to-end line times one RepLKNet-31B training step (forward, backward of the summed
outputs, SGD step) the stock way (NCHW, F.conv2d) vs mmreplk's defaults. It needs
``mmreplk.models`` (mmengine + mmcv, mmcv-lite is enough) and says so when they are missing;
the rest needs torch only (+ triton for the GPU kernels).

    python tools/analysis_tools/benchmark_dwconv.py --device cpu --shapes 31b-224 31b-512
    python tools/analysis_tools/benchmark_dwconv.py --device cuda --dtype fp32 bf16 \\
        --workload upernet-ade20k-512 --markdown work_dirs/dwconv_cuda.md --json rows.json
"""
import argparse
import json
import platform
import sys
from typing import Callable, Dict, List, Optional, Tuple

import torch
import torch.nn.functional as F
from torch.utils.benchmark import Timer

from mmreplk.ops import depthwise_conv2d
from mmreplk.ops.dwconv import resolve_impl
from mmreplk.ops.kernel_model import STAGES_31B, WORKLOADS, workload_shapes

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


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--device', choices=['cpu', 'cuda'], default=None)
    parser.add_argument('--dtype', nargs='+', choices=list(DTYPES), default=['fp32'])
    parser.add_argument('--workload', nargs='+', default=None,
                        help=f"training workloads: {', '.join(WORKLOADS)} (default on CUDA: "
                             'all; on CPU: none, the --shapes sets)')
    parser.add_argument('--shapes', nargs='+', default=None,
                        help='31b-<image> shape sets (default on CPU: 31b-224 31b-512)')
    parser.add_argument('--min-time', type=float, default=None,
                        help='seconds of timed calls per measurement (blocked_autorange); '
                             'default 1 on CPU, 0.3 on CUDA')
    parser.add_argument('--peak-tflops', type=float, default=0.,
                        help='fp32 FMA peak for the %%peak columns (default: from the GPU)')
    parser.add_argument('--e2e', choices=['on', 'off', 'only'], default='on',
                        help='the RepLKNet-31B training-step line')
    parser.add_argument('--e2e-batch', type=int, default=None)
    parser.add_argument('--e2e-size', type=int, default=None)
    parser.add_argument('--markdown', metavar='FILE', help='also write the report as markdown')
    parser.add_argument('--json', metavar='FILE',
                        help='also write the rows as JSON records (with batch and workload)')
    args = parser.parse_args(argv)
    args.device = args.device or ('cuda' if torch.cuda.is_available() else 'cpu')
    if args.device == 'cuda' and not torch.cuda.is_available():
        parser.error('--device cuda: no CUDA device here (torch.cuda.is_available() is False)')
    if args.min_time is None:
        args.min_time = 1.0 if args.device == 'cpu' else 0.3
    if args.workload is None and args.shapes is None:
        args.workload = list(WORKLOADS) if args.device == 'cuda' else []
        args.shapes = [] if args.device == 'cuda' else ['31b-224', '31b-512']
    bad = [name for name in args.workload or [] if name not in WORKLOADS]
    if bad:
        parser.error(f'unknown workload {bad[0]!r}; valid: {", ".join(WORKLOADS)}')
    return args


def cases(args: argparse.Namespace) -> List[Case]:
    """The workloads' cases, then the shape sets'."""
    out = [c for name in args.workload or [] for c in workload_cases(name)]
    return out + [c for name in args.shapes or [] for c in stage_shapes(name, args.device)]


def records(header: List[str], rows: List[List[str]], workloads: List[str]) -> List[dict]:
    """The rows as JSON records: the columns, with batch and workload."""
    out = []
    for row, workload in zip(rows, workloads):
        rec = dict(zip(header, row))
        rec.update(batch=int(rec['N']), workload=workload)
        out.append(rec)
    return out


def main(argv=None) -> None:
    args = parse_args(argv)
    device = args.device
    env = environment(device)
    print(env, flush=True)
    peak = peak_tflops(device, args.peak_tflops)
    header = COLUMNS + (ROOF_COLUMNS if peak else [])
    rows, row_workloads = [], []
    if args.e2e != 'only':
        print(' | '.join(header), flush=True)
        for dname in args.dtype:
            for label, workload, n, c, h, w, k in cases(args):
                r = bench_shape(n, c, h, w, k, DTYPES[dname], device, args.min_time)
                rows.append(shape_row(label, dname, n, c, h, w, k, r, device, peak))
                row_workloads.append(workload)
                print(' | '.join(rows[-1]), flush=True)
        print(NOTE)
    e2e = None
    if args.e2e != 'off':
        e2e = train_step_line(device, args.e2e_batch, args.e2e_size, args.min_time)
        print(e2e, flush=True)
    if args.markdown:
        command = 'python tools/analysis_tools/benchmark_dwconv.py ' + ' '.join(
            sys.argv[1:] if argv is None else argv)
        with open(args.markdown, 'w') as f:
            f.write(markdown(env, command, header, rows, e2e))
        print(f'markdown report: {args.markdown}')
    if args.json:
        with open(args.json, 'w') as f:
            json.dump(records(header, rows, row_workloads), f, indent=1)


if __name__ == '__main__':
    main()
