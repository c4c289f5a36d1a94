"""The GPU check (tools/gpu_check.sh, mmreplk.ops.gpu_check): step order and budgets, rows
written as they are measured, the CPU-only run, and the fixed-config rows' arithmetic in
Triton's interpreter on tiny maps."""
import re
import subprocess
import time

import pytest
import torch

from mmreplk.ops import gpu_check as gc

from conftest import ROOT


def test_measures_first_within_budgets():
    rows = gc.fixed_rows()
    assert rows[0] == gc.Row('fp32', 'fwd', 1, 2)  # the report's first measured row
    paths = [r.path for r in rows]
    assert paths == sorted(paths, key=['fp32', 'bf16-tc'].index)  # CUDA cores, then tensor
    assert {(r.path, r.kernel, r.stage, r.batch) for r in rows} == {
        (p, k, s, b) for p, ks in (('fp32', ('fwd', 'wgrad')), ('bf16-tc', ('fwd',)))
        for k in ks for s in (1, 4) for b in (2, 16)}
    assert rows[0].shape == (2, 128, 128, 128, 31) and rows[-1].shape == (16, 1024, 16, 16, 13)
    assert [name for name, _ in gc.STEPS] == ['fixed', 'tuned', 'train', 'ncu', 'pytest']
    assert dict(gc.STEPS)['fixed'] <= 180 and sum(b for _, b in gc.STEPS) <= 480
    script = (ROOT / 'tools' / 'gpu_check.sh').read_text()
    assert re.search(r'GPU_CHECK_BUDGET_S:-480\b', script) and 'python3' in script
    assert 'pytest' not in script.split('set -u')[1]  # no pytest needed to run it


def test_cpu_only_run_exits_zero_in_seconds(tmp_path):
    report = tmp_path / 'gpu.md'
    start = time.monotonic()
    proc = subprocess.run(['bash', str(ROOT / 'tools' / 'gpu_check.sh'), str(report)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert time.monotonic() - start < 60
    text = report.read_text()
    assert 'no CUDA device' in text and 'torch 2' in text and '| row |' not in text


def test_rows_reach_the_report_as_measured_and_budget_stops(tmp_path, monkeypatch):
    clock = [0.0]
    report = tmp_path / 'r.md'
    seen = []

    def fake_row(row, **_):
        seen.append((row, report.read_text()))
        clock[0] += 70  # three rows fit the 180 s budget of the first step
        return dict(config='cfg', ms=1.0, error=0.0, tflops=2.0, fraction=0.5)

    monkeypatch.setattr(torch.cuda, 'is_available', lambda: True)
    monkeypatch.setattr(gc, 'environment', lambda: ['env line'])
    monkeypatch.setattr(gc, 'run_fixed_row', fake_row)
    monkeypatch.setattr(gc, 'static_bound', lambda row, config: '0.50 (issue)')
    monkeypatch.setattr(gc.time, 'monotonic', lambda: clock[0])
    assert gc.run(str(report), steps=(('fixed', 180),)) == 0
    assert [r for r, _ in seen] == gc.fixed_rows()[:3]
    assert 'fp32 fwd stage 1 batch 2' in seen[1][1]  # written before the next one ran
    lines = [line for line in report.read_text().splitlines() if line.startswith('| fp32')
             or line.startswith('| bf16')]
    assert len(lines) == len(gc.fixed_rows()) and 'stopped: step budget' in lines[-1]
    assert lines[0].startswith('| fp32 fwd stage 1 batch 2 | cfg | 1.000 |')
    assert torch.backends.cudnn.allow_tf32  # the rows ran with TF32 off, restored after


@pytest.mark.parametrize('path,kernel', [('fp32', 'fwd'), ('fp32', 'wgrad'),
                                         ('bf16-tc', 'fwd')])
def test_fixed_row_in_interpreter(monkeypatch, path, kernel):
    """Tiny maps in Triton's interpreter: the config, the spot check, the FLOP count."""
    pytest.importorskip('triton')
    monkeypatch.setenv('TRITON_INTERPRET', '1')
    monkeypatch.setattr(gc, 'workload_shapes', lambda name, batch: [(batch, 2, 6, 16, 5)] * 4)
    r = gc.run_fixed_row(gc.Row(path, kernel, 1, 2), device='cpu', timer=lambda fn: 0.5)
    assert r['error'] < (1e-2 if path == 'bf16-tc' else 1e-5)
    assert r['config'].startswith('BM=' if path == 'bf16-tc' else 'BH=' if kernel == 'fwd'
                                  else 'BI=')
    taps = sum(min(5, o + 2) - max(0, o - 2) + 1 for o in range(6)) * sum(
        min(15, o + 2) - max(0, o - 2) + 1 for o in range(16))
    assert r['tflops'] == pytest.approx(2 * 2 * 2 * taps / 0.5 / 1e9)
