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
import platform
from typing import List, Tuple

import torch

from mmreplk.ops.benchmark_memory import HEADER, IMPLS, PASSES, measure_in_child, row

def positive(text: str) -> int:
    if not text.isdigit() or int(text) == 0:
        raise argparse.ArgumentTypeError(f'expected a positive integer, got {text!r}')
    return int(text)


def parse_nc(text: str) -> Tuple[int, int]:
    n, _, c = text.partition('x')
    if not (n.isdigit() and c.isdigit() and int(n) > 0 and int(c) > 0):
        raise argparse.ArgumentTypeError(f'expected NxC with positive integers, got {text!r}')
    return int(n), int(c)


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--pass', dest='kinds', nargs='+', choices=PASSES, default=['wgrad'])
    p.add_argument('--sizes', nargs='+', type=positive, default=[512, 1024],
                   help='map H = W')
    p.add_argument('--nc', nargs='+', type=parse_nc, default=[(1, 4), (2, 4)],
                   help='batch x channels, e.g. 1x4 2x128')
    p.add_argument('--kernel', type=positive, default=31, help='odd kernel size')
    p.add_argument('--threads', type=positive, default=torch.get_num_threads())
    args = p.parse_args(argv)
    if args.kernel % 2 == 0:
        p.error(f'--kernel must be odd, got {args.kernel}')
    return args


def main(argv=None) -> List[List[str]]:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
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
