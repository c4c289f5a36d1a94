"""Peak CPU memory of the depthwise conv's backward: mmreplk's CPU path vs stock PyTorch.

Each measurement runs in a fresh process: it runs the pass once on a small map with the
same C and K (oneDNN's kernel creation), records its resident memory (VmRSS), creates the
inputs, resets the kernel's peak counter (``/proc/self/clear_refs``, Linux), runs one
pass and reads the peak (VmHWM). The figure is that peak minus the resident memory before
the inputs: inputs, outputs, gradients and every temporary buffer of the pass. Passes:

* ``wgrad``: the weight gradient alone (``dwconv2d_weight_grad`` vs
  ``torch.nn.grad.conv2d_weight``);
* ``fb``: forward + backward, input and weight gradients (``depthwise_conv2d(...,
  impl='cpu')`` vs ``F.conv2d`` on NCHW).

Stock runs first in each row, in the same invocation, and the ratio is fast / stock.
Needs torch only. Stock's im2col paths take minutes at 1024x1024 with many channels.

    python tools/analysis_tools/benchmark_dwconv_memory.py --sizes 512 1024 --nc 1x4 2x4
    python tools/analysis_tools/benchmark_dwconv_memory.py --pass fb --sizes 512 --nc 2x16
"""
import argparse
import json
import os.path as osp
import platform
import subprocess
import sys
import time
from typing import Dict, List, Tuple

import torch
import torch.nn.functional as F

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))

from mmreplk.ops import depthwise_conv2d  # noqa: E402

IMPLS = ('stock', 'fast')
PASSES = ('wgrad', 'fb')


def _status_mb(field: str) -> float:
    with open('/proc/self/status') as f:
        for line in f:
            if line.startswith(field + ':'):
                return int(line.split()[1]) / 1024
    raise RuntimeError(f'no {field} in /proc/self/status (Linux only)')


def _run_pass(kind: str, impl: str, x: torch.Tensor, g: torch.Tensor, k: int) -> None:
    c = x.shape[1]
    if kind == 'wgrad':
        if impl == 'stock':
            torch.nn.grad.conv2d_weight(x, (c, 1, k, k), g, 1, k // 2, 1, c)
        else:
            torch.ops.mmreplk.dwconv2d_weight_grad(x, g, k, k, 'cpu')
        return
    w = torch.randn(c, 1, k, k, requires_grad=True)
    xg = x.requires_grad_()
    if impl == 'stock':
        y = F.conv2d(xg, w, None, 1, k // 2, 1, c)
    else:
        y = depthwise_conv2d(xg, w, impl='cpu')
    y.backward(g)


def measure(kind: str, impl: str, n: int, c: int, size: int, k: int) -> Dict[str, float]:
    """Peak MB over the pre-input resident memory and seconds of one pass (this process)."""
    small = (1, c, 2 * k, 2 * k)  # warm-up: oneDNN creates its kernels for C and K
    _run_pass(kind, impl, torch.randn(small), torch.randn(small), k)
    base = _status_mb('VmRSS')
    x, g = torch.randn(n, c, size, size), torch.randn(n, c, size, size)
    with open('/proc/self/clear_refs', 'w') as f:
        f.write('5')  # reset VmHWM to the current resident memory
    start = time.perf_counter()
    _run_pass(kind, impl, x, g, k)
    seconds = time.perf_counter() - start
    return dict(peak_mb=_status_mb('VmHWM') - base, seconds=seconds)


def measure_in_child(kind: str, impl: str, n: int, c: int, size: int, k: int,
                     threads: int) -> Dict[str, float]:
    """:func:`measure` in a fresh interpreter (a process's peak cannot be lowered)."""
    cmd = [sys.executable, osp.abspath(__file__), '--child', kind, impl, str(n), str(c),
           str(size), str(k), '--threads', str(threads)]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        tail = (proc.stderr.strip().splitlines() or ['(no output)'])[-1]
        return dict(error=f'exit {proc.returncode}: {tail}')
    return json.loads(proc.stdout.strip().splitlines()[-1])


def positive(text: str) -> int:
    if not text.isdigit() or int(text) == 0:
        raise argparse.ArgumentTypeError(f'expected a positive integer, got {text!r}')
    return int(text)


def parse_nc(text: str) -> Tuple[int, int]:
    n, _, c = text.partition('x')
    if not (n.isdigit() and c.isdigit() and int(n) > 0 and int(c) > 0):
        raise argparse.ArgumentTypeError(f'expected NxC with positive integers, got {text!r}')
    return int(n), int(c)


def row(kind: str, n: int, c: int, size: int, k: int,
        results: Dict[str, Dict[str, float]]) -> List[str]:
    """One table row: pass, shape, stock and fast peak MB, fast/stock, seconds."""
    def mb(r):
        return r['error'] if 'error' in r else f'{r["peak_mb"]:.0f}'

    def sec(r):
        return '-' if 'error' in r else f'{r["seconds"]:.2f}'

    stock, fast = results['stock'], results['fast']
    ratio = ('-' if 'error' in stock or 'error' in fast
             else f'{fast["peak_mb"] / max(stock["peak_mb"], 1.):.2f}')
    return [kind, str(n), str(c), f'{size}x{size}', str(k), mb(stock), mb(fast), ratio,
            sec(stock), sec(fast)]


HEADER = ['pass', 'N', 'C', 'HxW', 'K', 'stock MB', 'fast MB', 'fast/stock', 'stock s',
          'fast s']


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--pass', dest='kinds', nargs='+', choices=PASSES, default=['wgrad'])
    p.add_argument('--sizes', nargs='+', type=positive, default=[512, 1024],
                   help='map H = W')
    p.add_argument('--nc', nargs='+', type=parse_nc, default=[(1, 4), (2, 4)],
                   help='batch x channels, e.g. 1x4 2x128')
    p.add_argument('--kernel', type=positive, default=31, help='odd kernel size')
    p.add_argument('--threads', type=positive, default=torch.get_num_threads())
    p.add_argument('--child', nargs=6, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.kernel % 2 == 0:
        p.error(f'--kernel must be odd, got {args.kernel}')
    return args


def main(argv=None) -> List[List[str]]:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    if args.child:
        kind, impl, n, c, size, k = args.child
        print(json.dumps(measure(kind, impl, int(n), int(c), int(size), int(k))))
        return []
    print(f'# {platform.processor() or platform.machine()}, '
          f'{torch.backends.cpu.get_cpu_capability()}, {args.threads} threads, '
          f'torch {torch.__version__}')
    print('| ' + ' | '.join(HEADER) + ' |')
    print('|' + '---|' * len(HEADER))
    rows = []
    for kind in args.kinds:
        for size in args.sizes:
            for n, c in args.nc:
                results = {impl: measure_in_child(kind, impl, n, c, size, args.kernel,
                                                  args.threads) for impl in IMPLS}
                rows.append(row(kind, n, c, size, args.kernel, results))
                print('| ' + ' | '.join(rows[-1]) + ' |', flush=True)
    return rows


if __name__ == '__main__':
    main()
