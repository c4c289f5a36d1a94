"""Checkpoints no kill and no full disk can lose (mmreplk.SafeCheckpointHook, the atomic
writes, latest_checkpoint, the work-dir check), driven in-process through a real
mmengine runner on a toy model; each step of the save / point / remove sequence is
interrupted on purpose and the run resumed."""
import errno
import os
import subprocess
import uuid

import pytest
import torch
from mmengine.fileio import LocalBackend
from mmengine.evaluator import BaseMetric
from mmengine.model import BaseModel
from mmengine.runner import Runner
from torch.utils.data import Dataset

import mmreplk.engine  # noqa: F401  registers the hook
from mmreplk.engine import latest_checkpoint
from mmreplk.errors import WorkDirError
from mmreplk.utils import load_checkpoint_file


class Toy(BaseModel):
    def __init__(self, numel: int = 4):
        super().__init__()
        self.weight = torch.nn.Parameter(torch.zeros(numel))

    def forward(self, inputs, data_samples=None, mode='tensor'):
        out = (inputs * self.weight).sum()
        if mode == 'loss':
            return dict(loss=(out - 1) ** 2)
        return [out] if mode == 'predict' else out


class Ones(Dataset):
    def __init__(self, numel: int):
        self.numel = numel

    def __len__(self):
        return 8

    def __getitem__(self, i):
        return dict(inputs=torch.ones(self.numel))


def toy_runner(work_dir, iters: int, resume: bool = False, numel: int = 4,
               max_keep: int = 1) -> Runner:
    """A runner saving every iteration, keeping ``max_keep`` checkpoints."""
    return Runner(
        model=Toy(numel), work_dir=str(work_dir), experiment_name=uuid.uuid4().hex,
        train_dataloader=dict(dataset=Ones(numel), batch_size=1,
                              sampler=dict(type='DefaultSampler', shuffle=False),
                              collate_fn=dict(type='default_collate')),
        optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.01)),
        train_cfg=dict(by_epoch=False, max_iters=iters),
        default_hooks=dict(checkpoint=dict(type='mmreplk.SafeCheckpointHook', interval=1,
                                           by_epoch=False, max_keep_ckpts=max_keep)),
        resume=resume, load_from=latest_checkpoint(str(work_dir)) if resume else None)


class Killed(BaseException):
    """Stands for the process dying at that point."""


def _kill_at(monkeypatch, target, name: str, call: int) -> None:
    """Make ``target.name`` raise Killed on its ``call``-th call."""
    original, calls = getattr(target, name), []

    def dying(*args, **kwargs):
        calls.append(1)
        if len(calls) == call:
            raise Killed
        return original(*args, **kwargs)
    monkeypatch.setattr(target, name, dying)


@pytest.mark.parametrize('step, newest', [
    ('while writing the checkpoint', 2),
    ('after its rename, before last_checkpoint', 3),
    ('after last_checkpoint, before removing the old one', 3),
])
def test_a_kill_at_each_step_keeps_a_checkpoint_and_resumes(tmp_path, monkeypatch, step,
                                                           newest):
    import mmreplk.engine.hooks as hooks
    import mmreplk.utils.io as io
    with monkeypatch.context() as m:  # each save: checkpoint, pointer, old one removed
        if step.startswith('while'):  # os.replace: 1-2 iteration 1, 3-4 iteration 2
            _kill_at(m, io.os, 'replace', 5)
        elif step.startswith('after its rename'):
            _kill_at(m, hooks, 'atomic_write', 3)
        else:  # the first removal is iteration 2's
            _kill_at(m, LocalBackend, 'remove', 2)
        with pytest.raises(Killed):
            toy_runner(tmp_path, 5).train()
    last = latest_checkpoint(str(tmp_path))
    assert last == str(tmp_path / f'iter_{newest}.pth')
    assert load_checkpoint_file(last)['meta']['iter'] == newest
    assert not [n for n in os.listdir(tmp_path) if n.endswith('.tmp')]
    resumed = toy_runner(tmp_path, newest + 1, resume=True)
    resumed.train()
    assert resumed.iter == newest + 1
    assert sorted(n for n in os.listdir(tmp_path) if n.endswith('.pth')) == [
        f'iter_{newest + 1}.pth']  # max_keep_ckpts=1 once the run goes on


class Rising(BaseMetric):
    """A score that improves at every validation."""
    calls = 0

    def process(self, data_batch, data_samples):
        self.results.append(0)

    def compute_metrics(self, results):
        Rising.calls += 1
        return dict(score=Rising.calls)


def test_a_kill_while_saving_a_new_best_keeps_the_previous_best(tmp_path, monkeypatch):
    """mmengine removes the previous best checkpoint before writing the new one."""
    import mmreplk.utils.io as io
    runner = Runner(
        model=Toy(), work_dir=str(tmp_path), experiment_name=uuid.uuid4().hex,
        train_dataloader=dict(dataset=Ones(4), batch_size=1, collate_fn=dict(
            type='default_collate'), sampler=dict(type='DefaultSampler', shuffle=False)),
        val_dataloader=dict(dataset=Ones(4), batch_size=4, collate_fn=dict(
            type='default_collate'), sampler=dict(type='DefaultSampler', shuffle=False)),
        val_evaluator=dict(type=Rising), val_cfg=dict(),
        optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.01)),
        train_cfg=dict(by_epoch=False, max_iters=3, val_interval=1),
        default_hooks=dict(checkpoint=dict(
            type='mmreplk.SafeCheckpointHook', interval=100, by_epoch=False,
            save_last=False, save_best='score', rule='greater')))
    Rising.calls = 0
    _kill_at(monkeypatch, io.os, 'replace', 3)  # the new best of iteration 3
    with pytest.raises(Killed):
        runner.train()
    assert [n for n in os.listdir(tmp_path) if n.startswith('best')] == [
        'best_score_iter_2.pth']  # iteration 1's removed once iteration 2's was saved


def test_latest_checkpoint_ignores_dangling_and_stale_pointers(tmp_path):
    toy_runner(tmp_path, 3, max_keep=3).train()
    pointer = tmp_path / 'last_checkpoint'
    assert latest_checkpoint(str(tmp_path)) == str(tmp_path / 'iter_3.pth')
    pointer.write_text(str(tmp_path / 'iter_9.pth'))  # dangling
    assert latest_checkpoint(str(tmp_path)) == str(tmp_path / 'iter_3.pth')
    pointer.write_text(str(tmp_path / 'iter_1.pth'))  # stale
    assert latest_checkpoint(str(tmp_path)) == str(tmp_path / 'iter_3.pth')
    (tmp_path / 'iter_4.pth').write_bytes((tmp_path / 'iter_3.pth').read_bytes()[:100])
    assert latest_checkpoint(str(tmp_path)) == str(tmp_path / 'iter_3.pth')  # not whole
    assert latest_checkpoint(str(tmp_path / 'none')) is None


def test_mmengine_auto_resume_goes_by_content(tmp_path):
    """resume=True without a checkpoint (mmseg's and mmdet's own train.py --resume): the
    hook picks the newest complete checkpoint, not a dangling pointer."""
    toy_runner(tmp_path, 2, max_keep=2).train()
    (tmp_path / 'last_checkpoint').write_text(str(tmp_path / 'iter_7.pth'))
    runner = toy_runner(tmp_path, 3)
    runner._resume = True  # as resume=True with no load_from
    resumed = []
    resume = runner.resume
    runner.resume = lambda filename, **kw: resumed.append(filename) or resume(filename, **kw)
    runner.train()
    assert resumed == [str(tmp_path / 'iter_2.pth')] and runner.iter == 3
    (tmp_path / 'empty').mkdir()
    (tmp_path / 'empty' / 'last_checkpoint').write_text('/nowhere/iter_9.pth')
    fresh = toy_runner(tmp_path / 'empty', 1)
    fresh._resume = True
    fresh.train()  # nothing to resume: trains from the start
    assert fresh.iter == 1


def test_orphans_removed_at_start_and_files_get_the_umask(tmp_path):
    orphan = tmp_path / '.iter_2.pth.k2j4h5g6.tmp'
    orphan.write_bytes(b'x' * 100)
    keep = tmp_path / '.not_ours.tmp'
    keep.write_bytes(b'x')
    old = os.umask(0o002)
    try:
        toy_runner(tmp_path, 1).train()
    finally:
        os.umask(old)
    assert not orphan.exists() and keep.exists()
    assert (tmp_path / 'iter_1.pth').stat().st_mode & 0o777 == 0o664
    assert (tmp_path / 'last_checkpoint').stat().st_mode & 0o777 == 0o664


def test_a_full_disk_keeps_the_previous_checkpoint(tmp_path, monkeypatch):
    import mmreplk.utils.io as io
    original, calls = io.os.fdopen, []

    def fdopen(fd, mode):
        f = original(fd, mode)
        calls.append(1)
        if len(calls) == 3:  # iteration 2's checkpoint (1: iter_1, 2: its pointer)
            def write(data):
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
            f.write = write
        return f
    monkeypatch.setattr(io.os, 'fdopen', fdopen)
    with pytest.raises(WorkDirError) as info:
        toy_runner(tmp_path, 3).train()
    message = str(info.value)
    assert message.startswith(f'could not write {tmp_path / "iter_2.pth"}: No space left')
    assert f'free in {tmp_path})' in message
    assert f'the previous checkpoint {tmp_path / "iter_1.pth"} is intact' in message
    assert sorted(os.listdir(tmp_path))[-2:] == ['iter_1.pth', 'last_checkpoint']
    assert load_checkpoint_file(str(tmp_path / 'iter_1.pth'))['meta']['iter'] == 1


@pytest.fixture
def small_tmpfs(tmp_path):
    """A 1 MiB tmpfs (needs the right to mount: skipped elsewhere)."""
    mount = tmp_path / 'mnt'
    mount.mkdir()
    if subprocess.run(['mount', '-t', 'tmpfs', '-o', 'size=1m', 'tmpfs', str(mount)],
                      capture_output=True).returncode:
        pytest.skip('cannot mount a small tmpfs here (needs root / CAP_SYS_ADMIN)')
    yield mount
    subprocess.run(['umount', '-l', str(mount)], check=True)  # the runner's log stays open


def test_a_real_full_disk(small_tmpfs):
    """400 kB checkpoints on a 1 MiB file system: the third does not fit beside two."""
    with pytest.raises(WorkDirError, match='No space left on device .*free in .*; the '
                       r'previous checkpoint .*iter_2\.pth is intact'):
        toy_runner(small_tmpfs, 5, numel=100_000, max_keep=2).train()
    assert load_checkpoint_file(str(small_tmpfs / 'iter_2.pth'))['meta']['iter'] == 2
    assert not [n for n in os.listdir(small_tmpfs) if n.endswith('.tmp')]


def test_unwritable_work_dirs_are_refused_at_start_up(tmp_path):
    from mmreplk import apis as common
    common.check_work_dir(str(tmp_path / 'new'))  # created
    (tmp_path / 'file').write_text('')
    with pytest.raises(WorkDirError, match=r'work dir .*file/run is not writable \(Not a '
                       'directory\\): .*--work-dir'):
        common.check_work_dir(str(tmp_path / 'file' / 'run'))
    ro = tmp_path / 'ro'
    ro.mkdir()
    if subprocess.run(['mount', '-t', 'tmpfs', '-o', 'ro,size=64k', 'tmpfs', str(ro)],
                      capture_output=True).returncode == 0:
        try:
            with pytest.raises(WorkDirError, match='is not writable \\(Read-only file '
                               'system\\)'):
                common.check_work_dir(str(ro))
        finally:
            subprocess.run(['umount', str(ro)], check=True)
