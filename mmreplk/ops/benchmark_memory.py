"""Peak CPU memory of one pass of the depthwise conv, mmreplk's CPU path or stock, each in a
fresh process, for ``tools/analysis_tools/benchmark_dwconv_memory.py`` (the method is
described there). ``python -m mmreplk.ops.benchmark_memory KIND IMPL N C SIZE K THREADS``
is the child process: it prints one JSON record."""
import json
import subprocess
import sys
import time
from typing import Dict, List

import torch
import torch.nn.functional as F

from .dwconv import depthwise_conv2d

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
    cmd = [sys.executable, '-m', 'mmreplk.ops.benchmark_memory', kind, impl, str(n),
           str(c), str(size), str(k), str(threads)]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        tail = (proc.stderr.strip().splitlines() or ['(no output)'])[-1]
        return dict(error=f'exit {proc.returncode}: {tail}')
    return json.loads(proc.stdout.strip().splitlines()[-1])


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


if __name__ == '__main__':
    kind, impl, *numbers = sys.argv[1:]
    n, c, size, k, threads = map(int, numbers)
    torch.set_num_threads(threads)
    print(json.dumps(measure(kind, impl, n, c, size, k)))
