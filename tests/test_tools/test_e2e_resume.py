"""Checkpoints: atomic writes, safe loading on torch >= 2.6, and resuming a
killed training run at the right iteration with its optimizer state."""
import os
import re
import signal
import subprocess
import sys
import time

import pytest
import torch
from conftest import LEARN_ITERS, ROOT, run_tool, seg_options, tool_command
from mmengine.fileio import get_file_backend

from mmreplk.engine import AtomicLocalBackend, latest_checkpoint


def test_atomic_backend_keeps_old_file_on_failed_write(tmp_path):
    backend = get_file_backend(backend_args=dict(backend='atomic_local'))
    assert isinstance(backend, AtomicLocalBackend)
    path = tmp_path / 'sub' / 'iter_2.pth'
    backend.put(b'complete', path)
    with pytest.raises(TypeError):
        backend.put(object(), path)  # fails half-way through the write
    assert path.read_bytes() == b'complete'
    assert os.listdir(path.parent) == ['iter_2.pth']  # no temp file left


SAFE_LOAD = """
import io, pickle, sys
import torch
from mmengine.logging.history_buffer import HistoryBuffer


class Sneaky:
    def __reduce__(self):
        return (getattr, (HistoryBuffer, '__init__'))


def load(source):
    try:
        ckpt = torch.load(source, weights_only=True)
    except pickle.UnpicklingError as e:
        return 'refused' + (' getattr' if 'getattr' in str(e) else '')
    return 'loaded ' + ','.join(sorted(ckpt))


sneaky = io.BytesIO()
torch.save({'x': Sneaky()}, sneaky)
import mmreplk, mmreplk.models  # no switch
print(load(sys.argv[1]))
import mmreplk.engine  # the switch
print(load(sys.argv[1]))
sneaky.seek(0)
print(load(sneaky))
"""


@pytest.mark.slow
def test_engine_switch_makes_runner_checkpoints_safely_loadable(learned_seg):
    """A real runner checkpoint under ``weights_only=True``: refused until
    mmreplk.engine is imported, then loaded; any other getattr stays refused. It runs in
    a fresh interpreter: the switch is process-wide, and this one has it on."""
    ckpt = os.path.join(learned_seg.work_dir, f'iter_{LEARN_ITERS}.pth')
    result = subprocess.run([sys.executable, '-c', SAFE_LOAD, ckpt],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]
    before, after, sneaky = result.stdout.strip().splitlines()
    assert before == 'refused'
    assert after.startswith('loaded ') and 'message_hub' in after
    assert sneaky == 'refused getattr'


def _train_args(root, work_dir, iters, resume=False):
    """tools/train.py's arguments and options: a checkpoint every 2 iterations, only the
    last one kept (mmengine's own hook could then be killed with none on disk)."""
    opts = seg_options(root, iters)
    opts.update({
        'default_hooks.checkpoint.interval': '2',
        'default_hooks.checkpoint.max_keep_ckpts': '1',
        'train_cfg.val_interval': '1000',
    })
    args = ['configs/upernet_replk31b_ade20k.py', '--work-dir', work_dir]
    return args + (['--resume'] if resume else []), opts


@pytest.mark.slow
def test_killed_run_resumes_at_last_checkpoint(ade20k_root, tmp_path):
    work_dir = str(tmp_path)
    args, opts = _train_args(ade20k_root, work_dir, 1000)
    proc = subprocess.Popen(
        tool_command('train.py', *args, options=opts), cwd=ROOT,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 240
    try:
        while time.time() < deadline and proc.poll() is None:
            last = latest_checkpoint(work_dir)
            if last and int(re.search(r'iter_(\d+)', last)[1]) >= 4:
                break
            time.sleep(0.05)
        else:
            pytest.fail('training never reached a checkpoint')
    finally:
        proc.send_signal(signal.SIGKILL)  # crash: no clean-up runs
        proc.wait()

    killed_at = int(re.search(r'iter_(\d+)', latest_checkpoint(work_dir))[1])
    target = killed_at + 2
    args, opts = _train_args(ade20k_root, work_dir, target, resume=True)
    resumed = run_tool('train.py', *args, options=opts, timeout=240)
    log = resumed.stdout + resumed.stderr
    assert resumed.returncode == 0, log[-4000:]
    assert f'resumed epoch: 0, iter: {killed_at}' in log, log[-4000:]
    assert re.search(rf'Iter\(train\) \[\s*{killed_at + 1}/{target}\]', log)
    assert not re.search(rf'Iter\(train\) \[\s*1/{target}\]', log)
    # the schedule, rescaled to the new length, is rebuilt from the config on resume
    assert f'param_scheduler rebuilt from the config and replayed through {killed_at} ' \
        'iterations' in log, log[-4000:]
    lr = re.search(rf'first iteration after the start \({killed_at + 1}\): .*\blr=(\S+)', log)
    assert lr and float(lr[1]) > 0, [l for l in log.splitlines() if 'iteration' in l][:5]

    ckpt = torch.load(os.path.join(work_dir, f'iter_{target}.pth'))
    assert ckpt['meta']['iter'] == target
    steps = {int(s['step']) for s in ckpt['optimizer']['state'].values()}
    assert steps == {target}  # AdamW state carried over the interruption
