"""Static inspection of the Triton depthwise-conv kernels, without a GPU or CUDA driver.

Every kernel of the Triton modules (``mmreplk.ops.dwconv_triton`` and, when it exists,
``mmreplk.ops.dwconv_triton_tc``) x every config of its tuning space kept at each shape is
compiled ahead of time for sm_80 and sm_90 with Triton's own toolchain; the table gives
registers, spills, shared memory, occupancy, the SASS size and instruction mix of the
innermost hot loop and a static bound on the fraction of the GPU's peak (fp32 FMA for
CUDA-core kernels, the tensor pipe for mma kernels) it can reach. A bound, not a
measurement: the model is in docs/dwconv.md ("Static model").

Examples::

    python tools/analysis_tools/inspect_kernels.py       # the workloads and 31b-512 @ 16
    python tools/analysis_tools/inspect_kernels.py --workload upernet-ade20k-512 \
        --arch sm_90 --dtype fp32 --summary --json ade20k.json
    python tools/analysis_tools/inspect_kernels.py --arch sm_90 --dtype fp32 --summary
    python tools/analysis_tools/inspect_kernels.py --kernel fwd --shapes 16,128,128,128,31
    python tools/analysis_tools/inspect_kernels.py --json kernels.json --jobs 2
    python tools/analysis_tools/inspect_kernels.py --sass fwd "BH=2,B=8,G=2,w1" --shapes 31b-512

--workload takes the training settings of mmreplk.ops.kernel_model.WORKLOADS
(upernet-ade20k-512: RepLKNet-31B's four stage shapes at batch 2, ...); --shapes takes
N,C,H,W,K tuples or RepLKNet shape sets '<arch>-<image>' (31b-512: the four stage shapes at
512x512 input, batch --batch). With neither, every workload and 31b-512 at batch 16.
--batch overrides the workloads' batch sizes too. Each record carries its workload and
batch, both models' bounds and what limits it. Compiles are cached by Triton
(~/.triton/cache), so a second run is quick. --sass prints the annotated hot loop of one
kernel and config at the first shape, dtype and arch selected.
"""
import argparse
import json
import sys

from mmreplk.ops import kernel_model as K


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--workload', nargs='+', default=[],
                   help=f"training settings: {', '.join(K.WORKLOADS)}")
    p.add_argument('--shapes', nargs='+', default=[],
                   help="N,C,H,W,K tuples or RepLKNet sets such as 31b-512")
    p.add_argument('--batch', type=int, default=None,
                   help='batch of the RepLKNet sets (default 16) and of the workloads')
    p.add_argument('--dtype', nargs='+', default=list(K.DTYPES), help='fp32 bf16 fp16')
    p.add_argument('--arch', nargs='+', default=list(K.GPUS), help='sm_80 sm_90')
    p.add_argument('--kernel', nargs='+', help='only these kernels (fwd, dgrad, wgrad, ...)')
    p.add_argument('--summary', action='store_true',
                   help='one row per kernel, shape, dtype and arch: best config and range')
    p.add_argument('--json', metavar='FILE', help='write the records as a JSON list')
    p.add_argument('--sass', nargs=2, metavar=('KERNEL', 'CONFIG'),
                   help='print the annotated hot loop of one kernel and config')
    p.add_argument('--jobs', type=int, default=2, help='compiling processes (default 2)')
    return p.parse_args(argv)


def parse_shapes(items, batch):
    """[(N, C, H, W, K)] from the --shapes items; ValueError names a bad item."""
    shapes = []
    for item in items:
        if ',' in item:
            values = item.split(',')
            if len(values) != 5 or not all(v.isdigit() and int(v) > 0 for v in values):
                raise ValueError(f'bad shape {item!r}: expected N,C,H,W,K positive integers')
            shapes.append(tuple(int(v) for v in values))
            continue
        arch, _, image = item.partition('-')
        if arch.lower() == '31b' and image.isdigit():  # no mmcv needed for 31B
            shapes += [(batch, c, h, w, k) for (c, k), (h, w) in
                       zip(K.STAGES_31B, K.stage_maps((int(image), int(image))))]
            continue
        from mmreplk.models.backbones.replknet import RepLKNet
        names = {a.lower(): a for a in RepLKNet.arch_zoo}
        if arch.lower() not in names or not image.isdigit():
            raise ValueError(f'bad shape set {item!r}: expected <arch>-<image> with arch in '
                             f'{", ".join(RepLKNet.arch_zoo)} (e.g. 31b-512) or N,C,H,W,K')
        shapes += K.replknet_shapes(names[arch.lower()], int(image), batch)
    return shapes


def selected_shapes(args):
    """([(N, C, H, W, K)], [workload name per shape]) of --workload and --shapes."""
    if not args.workload and not args.shapes:
        args.workload, args.shapes = list(K.WORKLOADS), ['31b-512']
    shapes, names = [], []
    for name in args.workload:
        found = K.workload_shapes(name, args.batch)
        shapes += found
        names += [name] * len(found)
    for item in args.shapes:
        found = parse_shapes([item], args.batch or 16)
        shapes += found
        names += [item if ',' not in item else ''] * len(found)
    return shapes, names


def check_choices(name, given, valid):
    bad = [v for v in given if v not in valid]
    if bad:
        raise ValueError(f'unknown {name} {bad[0]!r}; valid: {", ".join(valid)}')


def main(argv=None):
    args = parse_args(argv)
    try:
        import triton  # noqa: F401
    except ImportError:
        print('error: triton is not installed (pip install triton)', file=sys.stderr)
        return 1
    try:
        shapes, names = selected_shapes(args)
        check_choices('dtype', args.dtype, K.DTYPES)
        check_choices('arch', args.arch, list(K.GPUS))
        every = K.tasks(shapes, args.dtype, args.arch, workloads=names)
        check_choices('kernel', args.kernel or [], sorted({t.kernel for t in every}))
        if args.sass:
            kernel, config = args.sass
            check_choices('kernel', [kernel], sorted({t.kernel for t in every}))
            labels = sorted({t.config for t in every if t.kernel == kernel})
            check_choices(f'config of {kernel}', [config], labels)
            task = next(t for t in every if t.kernel == kernel and t.config == config)
            print(f'{task.kernel} {task.config} at {task.shape} {task.dtype} {task.arch}')
            print(K.annotate(K.run_task(task), K.GPUS[task.arch]))
            return 0
    except ValueError as e:
        print(f'error: {e}', file=sys.stderr)
        return 1
    todo = [t for t in every if args.kernel is None or t.kernel in args.kernel]
    records = K.inspect_tasks(todo, args.jobs)
    print(K.format_summary(records) if args.summary else K.format_table(records))
    if args.json:
        with open(args.json, 'w') as f:
            json.dump(records, f, indent=1)
    return 0


if __name__ == '__main__':
    sys.exit(main())
