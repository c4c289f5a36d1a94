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
import sys

import torch

from mmreplk.ops.benchmark import (COLUMNS, DTYPES, NOTE, ROOF_COLUMNS, bench_shape, cases,
                                   environment, markdown, peak_tflops, records, shape_row,
                                   train_step_line)
from mmreplk.ops.kernel_model import WORKLOADS

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
            for label, workload, n, c, h, w, k in cases(args.workload or [], args.shapes or [], device):
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
