"""The GPU check of the Triton depthwise conv: measure the key numbers first, explain later.

Run by ``bash tools/gpu_check.sh [REPORT.md]`` (or ``python3 -m mmreplk.ops.gpu_check``).
Needs torch and Triton only; plain asserts, no pytest. Steps, in order, each within its
budget (:data:`STEPS`, 8 minutes in all, compiles included):

1. ``fixed``: with TF32 off, the fp32 CUDA-core forward and weight gradient at stages 1 and
   4 of ``upernet-ade20k-512`` at batch 2 and 16 with fixed configs (no autotuning), then
   the bf16 tensor-core forward at the same shapes; each row with a float64 spot check,
   CUDA-event timing (median of :data:`REPEATS`), the static bound beside it, and written
   to the report as soon as it is measured.
2. ``tuned``: the autotuned paths through ``depthwise_conv2d`` (fp32 CUDA cores, fp32 TF32
   and bf16 tensor cores), forward and forward + backward against stock ``F.conv2d``.
3. ``train``: one RepLKNet-31B training step at batch 2 @512 against stock PyTorch (needs
   ``mmreplk.models``: mmengine and mmcv).
4. ``ncu``: issue, FMA pipe, L1 and L2 throughput of one fp32 and one tensor-core forward,
   when Nsight Compute's ``ncu`` is on the PATH.
5. ``pytest``: the ``cuda``-marked tests, when pytest is importable and time remains.

Without a CUDA device it writes the environment and "no CUDA device" and exits 0.
"""
import argparse
import contextlib
import importlib.util
import platform
import shutil
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from typing import Callable, Iterator, List, Optional, Tuple

import torch
import torch.nn.functional as F

from .kernel_model import workload_shapes

WORKLOAD = 'upernet-ade20k-512'
STEPS: Tuple[Tuple[str, int], ...] = (('fixed', 180), ('tuned', 120), ('train', 90),
                                      ('ncu', 45), ('pytest', 45))  # (name, seconds)
REPEATS = 20
PEAK_TFLOPS = {'fp32': 66.9, 'bf16': 989.0}  # H100 SXM data sheet (fp32 FMA, dense bf16)
NCU_METRICS = ('sm__inst_issued.avg.pct_of_peak_sustained_active,'
               'sm__pipe_fma_cycles_active.avg.pct_of_peak_sustained_active,'
               'l1tex__throughput.avg.pct_of_peak_sustained_active,'
               'lts__throughput.avg.pct_of_peak_sustained_active')


@dataclass(frozen=True)
class Row:
    """One fixed-config measurement: path ('fp32' CUDA cores, 'bf16-tc' tensor cores),
    kernel ('fwd', 'wgrad'), stage (1-4) of :data:`WORKLOAD` and batch."""
    path: str
    kernel: str
    stage: int
    batch: int

    @property
    def shape(self) -> Tuple[int, int, int, int, int]:
        return workload_shapes(WORKLOAD, self.batch)[self.stage - 1]

    @property
    def label(self) -> str:
        return f'{self.path} {self.kernel} stage {self.stage} batch {self.batch}'


def fixed_rows() -> List[Row]:
    """The rows of the first step, in the order they are measured."""
    rows = []
    for path, kernels in (('fp32', ('fwd', 'wgrad')), ('bf16-tc', ('fwd',))):
        for stage in (1, 4):
            for batch in (2, 16):
                rows += [Row(path, kernel, stage, batch) for kernel in kernels]
    return rows


def cuda_median_ms(fn: Callable[[], object], repeats: int = REPEATS) -> float:
    """Median of ``repeats`` CUDA-event timings of ``fn`` after one warm-up call."""
    fn()
    times = []
    for _ in range(repeats):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        fn()
        end.record()
        end.synchronize()
        times.append(start.elapsed_time(end))
    return statistics.median(times)


def _useful_flops(shape) -> float:
    n, c, h, w, k = shape

    def taps(size):
        return sum(min(size - 1, o + k // 2) - max(0, o - k // 2) + 1 for o in range(size))
    return 2.0 * n * c * taps(h) * taps(w)


def run_fixed_row(row: Row, device: str = 'cuda',
                  timer: Callable[[Callable[[], object]], float] = cuda_median_ms) -> dict:
    """Time one fixed-config kernel and spot-check plane (0, 0) (forward) or channel 0
    (weight gradient) against float64; the config is the first the tuner would keep."""
    from . import dwconv_triton as fma
    n, c, h, w, k = row.shape
    dtype = torch.float32 if row.path == 'fp32' else torch.bfloat16
    gen = torch.Generator(device=device).manual_seed(0)
    x, g = (torch.randn(n, c, h, w, device=device, generator=gen).to(dtype) for _ in '12')
    wt = torch.randn(c, 1, k, k, device=device, generator=gen).to(dtype)
    if row.path == 'bf16-tc':
        from . import dwconv_triton_tc as tc
        cfg = tc.fwd_configs(row.shape, dtype)[0]
        label = 'BM={},BH={},w{},s{}'.format(cfg[0], tc._rows_per_image(cfg[0], h), *cfg[1:])

        def call():
            return tc.forward(x, wt, config=cfg)
    elif row.kernel == 'fwd':
        cfg = fma.fwd_configs(row.shape)[0]
        label, m = fma.config_label('fwd', cfg), fma.expand_weight(wt)

        def call():
            return fma._launch_forward(x, m, None, k, k, cfg)
    else:
        cfg = fma.wgrad_configs(row.shape)[0]
        label = fma.config_label('wgrad', cfg)

        def call():
            return fma._launch_wgrad(x, g, k, k, cfg)
    ms = timer(call)
    got = call()
    if row.kernel == 'fwd':
        ref = F.conv2d(x[:1, :1].double(), wt[:1].double(), None, 1, k // 2)
        got = got[:1, :1]
    else:
        xr = x[:, :1].double()
        wr = wt[:1].double().requires_grad_()
        F.conv2d(xr, wr, None, 1, k // 2).backward(g[:, :1].double())
        ref, got = wr.grad, got[:1]
    err = ((got.double() - ref).abs().max() / ref.abs().max()).item()
    tol = 1e-4 if dtype == torch.float32 or row.kernel == 'wgrad' else 1e-2
    assert err <= tol, f'{row.label} {label}: error {err:.3g} of max |float64| > {tol}'
    tflops = _useful_flops(row.shape) / ms / 1e9
    peak = PEAK_TFLOPS['fp32' if row.path == 'fp32' else 'bf16']
    return dict(config=label, ms=ms, error=err, tflops=tflops, fraction=tflops / peak)


def static_bound(row: Row, config: str) -> str:
    """The refined static bound of the row's kernel and config for sm_90, or why not."""
    try:
        from . import kernel_model as K
        kernel = {'fp32': row.kernel, 'bf16-tc': 'fwd_tc'}[row.path]
        dtype = 'fp32' if row.path == 'fp32' else 'bf16'
        todo = [t for t in K.tasks([row.shape], [dtype], ['sm_90'], kernels=[kernel])
                if t.config == config]
        r = K.run_task(todo[0]).record
        return f"{r['bound']:.2f} ({r['limiter']})"
    except Exception as err:  # the bound is an explanation, never a reason to stop
        return f'n/a ({type(err).__name__})'


class Report:
    """A markdown report written line by line (flushed: a killed run keeps its rows)."""

    def __init__(self, path: str) -> None:
        self.file = open(path, 'w')

    def line(self, text: str = '') -> None:
        print(text, flush=True)
        self.file.write(text + '\n')
        self.file.flush()


def environment() -> List[str]:
    """Versions, the GPU and its SM clock now and at most (nvidia-smi)."""
    lines = [f'python {platform.python_version()}, torch {torch.__version__}, '
             f'CUDA {torch.version.cuda}']
    try:
        import triton
        lines.append(f'triton {triton.__version__}')
    except ImportError:
        lines.append('triton: not importable')
    if torch.cuda.is_available():
        p = torch.cuda.get_device_properties(0)
        lines.append(f'GPU: {p.name}, {p.multi_processor_count} SMs, sm_{p.major}{p.minor}')
    if shutil.which('nvidia-smi'):
        out = subprocess.run(['nvidia-smi', '--query-gpu=driver_version,clocks.sm,'
                              'clocks.max.sm,power.limit', '--format=csv'],
                             capture_output=True, text=True)
        lines += out.stdout.strip().splitlines()
    return lines


@contextlib.contextmanager
def tf32(flag: bool) -> Iterator[None]:
    """PyTorch's TF32 flags for convolutions and matmuls, restored on exit."""
    saved = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = flag
    try:
        yield
    finally:
        torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = saved


def sm_clock() -> str:
    """The SM clock now (nvidia-smi), or why it is unknown."""
    if not shutil.which('nvidia-smi'):
        return 'unknown (no nvidia-smi)'
    out = subprocess.run(['nvidia-smi', '--query-gpu=clocks.sm', '--format=csv,noheader'],
                         capture_output=True, text=True)
    return out.stdout.strip() or out.stderr.strip()


def step_fixed(report: Report, deadline: float) -> None:
    with tf32(False):  # fp32 rows on the CUDA-core kernels
        _fixed_rows(report, deadline)
    report.line()
    report.line(f'SM clock right after these rows: {sm_clock()}')


def _fixed_rows(report: Report, deadline: float) -> None:
    report.line('| row | config | ms (median of 20) | useful TFLOP/s | of peak | static bound '
                '(sm_90) | float64 error |')
    report.line('|---|---|---|---|---|---|---|')
    for row in fixed_rows():
        if time.monotonic() > deadline:
            report.line(f'| {row.label} | stopped: step budget spent | | | | | |')
            continue
        r = run_fixed_row(row)
        report.line(f"| {row.label} | {r['config']} | {r['ms']:.3f} | {r['tflops']:.1f} | "
                    f"{r['fraction']:.2f} | {static_bound(row, r['config'])} | "
                    f"{r['error']:.1e} |")


def step_tuned(report: Report, deadline: float) -> None:
    report.line('| path | stage, batch 2 | backend | fwd ms (stock) | f+b ms (stock) |')
    report.line('|---|---|---|---|---|')
    for dname, flag in (('fp32', False), ('fp32 TF32', True), ('bf16', False)):
        with tf32(flag):
            _tuned_rows(report, deadline, dname)


def _tuned_rows(report: Report, deadline: float, dname: str) -> None:
    from . import depthwise_conv2d
    from .dwconv import resolve_impl
    dtype = torch.bfloat16 if dname == 'bf16' else torch.float32
    for stage, (n, c, h, w, k) in enumerate(workload_shapes(WORKLOAD, 2), 1):
        if time.monotonic() > deadline:
            report.line(f'| {dname} | {stage} | stopped: step budget spent | | |')
            continue
        x = torch.randn(n, c, h, w, device='cuda', dtype=dtype, requires_grad=True)
        wt = torch.randn(c, 1, k, k, device='cuda', dtype=dtype, requires_grad=True)
        g = torch.randn(n, c, h, w, device='cuda', dtype=dtype)

        def fast():
            return depthwise_conv2d(x, wt)

        def stock():
            return F.conv2d(x, wt, None, 1, k // 2, 1, c)
        with torch.no_grad():
            f_fast, f_stock = cuda_median_ms(fast), cuda_median_ms(stock)
        b_fast = cuda_median_ms(lambda: fast().backward(g))
        b_stock = cuda_median_ms(lambda: stock().backward(g))
        report.line(f'| {dname} | {stage} | {resolve_impl(None, x, k)} | {f_fast:.3f} '
                    f'({f_stock:.3f}) | {b_fast:.3f} ({b_stock:.3f}) |')


def _train_step_ms(x: torch.Tensor, **kwargs) -> float:
    """Median ms of one RepLKNet-31B training step (bf16 autocast, SGD) built with
    ``kwargs``."""
    from mmreplk.models import RepLKNet
    model = RepLKNet(arch='31B', **kwargs).cuda()
    opt = torch.optim.SGD(model.parameters(), lr=1e-3)

    def step():
        opt.zero_grad(set_to_none=True)
        with torch.autocast('cuda', dtype=torch.bfloat16):
            loss = sum(o.float().mean() for o in model(x))
        loss.backward()
        opt.step()
    return cuda_median_ms(step, repeats=10)


def step_train(report: Report, deadline: float) -> None:
    try:
        import mmreplk.models  # noqa: F401
    except ImportError as err:
        report.line(f'skipped: mmreplk.models is not importable ({err})')
        return
    x = torch.randn(2, 3, 512, 512, device='cuda')
    stock = _train_step_ms(x, dwconv_impl='torch', channels_last=False)
    fast = _train_step_ms(x)
    report.line(f'RepLKNet-31B training step, batch 2 @512, bf16 autocast: stock '
                f'{stock:.1f} ms, mmreplk {fast:.1f} ms, {stock / fast:.2f}x')


def step_ncu(report: Report, deadline: float) -> None:
    if not shutil.which('ncu'):
        report.line('skipped: ncu (Nsight Compute) is not on the PATH')
        return
    for one, regex in (('fp32', '_fwd_kernel'), ('bf16-tc', '_fwd_tc_kernel')):
        left = max(5, int(deadline - time.monotonic()))
        cmd = ['ncu', '--metrics', NCU_METRICS, '-k', f'regex:{regex}', '--launch-skip', '1',
               '--launch-count', '1', sys.executable, '-m', 'mmreplk.ops.gpu_check',
               '--one', one]
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=left)
        metrics = [line.strip() for line in out.stdout.splitlines() if '__' in line]
        report.line(f'{one} forward, stage 1 batch 2:')
        report.line('```')
        for line in metrics or (out.stdout + out.stderr).strip().splitlines()[-3:]:
            report.line(line)
        report.line('```')


def step_pytest(report: Report, deadline: float) -> None:
    if importlib.util.find_spec('pytest') is None:
        report.line('skipped: pytest is not importable')
        return
    left = int(deadline - time.monotonic())
    cmd = [sys.executable, '-m', 'pytest', '-p', 'no:cacheprovider', '--noconftest', '-m',
           'cuda', '-q', 'tests/test_ops/test_dwconv_cuda.py']
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=max(left, 1))
        report.line('```')
        report.line(out.stdout.strip().splitlines()[-1] if out.stdout.strip() else out.stderr)
        report.line('```')
    except subprocess.TimeoutExpired:
        report.line(f'stopped after its {left} s')


STEP_FUNCTIONS = dict(fixed=step_fixed, tuned=step_tuned, train=step_train, ncu=step_ncu,
                      pytest=step_pytest)


def run(report_path: str, steps=STEPS) -> int:
    """Write the report; 0 unless a spot check or a step failed."""
    report = Report(report_path)
    start = time.monotonic()
    report.line(f"# GPU check of the Triton depthwise conv ({time.strftime('%Y-%m-%d %H:%M')})")
    report.line()
    for line in environment():
        report.line(f'* {line}')
    if not torch.cuda.is_available():
        report.line()
        report.line('no CUDA device (torch.cuda.is_available() is False): nothing measured.')
        return 0
    status, end = 0, start
    for name, budget in steps:
        end += budget
        report.line()
        report.line(f'## {name} (budget {budget} s)')
        report.line()
        began = time.monotonic()
        try:
            STEP_FUNCTIONS[name](report, end)
        except Exception as err:  # one failing step must not hide the others
            status = 1
            report.line(f'FAILED: {type(err).__name__}: {err}')
        report.line(f'({name}: {time.monotonic() - began:.0f} s)')
    return status


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--report', default='gpu_report.md', help='markdown report path')
    parser.add_argument('--one', choices=['fp32', 'bf16-tc'],
                        help='run one stage-1 batch-2 forward twice (for ncu) and exit')
    args = parser.parse_args(argv)
    if args.one:
        for _ in range(2):
            run_fixed_row(Row(args.one, 'fwd', 1, 2))
        return 0
    return run(args.report)


if __name__ == '__main__':
    sys.exit(main())
