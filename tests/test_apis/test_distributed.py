"""Distributed runs on CPU processes (gloo): a shipped SyncBN config trains with
tools/dist_train.sh, and a rank that stops (SIGSTOP) or dies (SIGKILL) ends the run in
bounded time with one line naming it. The pieces in-process: the collective timeout,
the CPU model wrapper, the roll call, torchrun's failure line."""
import datetime
import os
import signal
import socket
import subprocess

import pytest
import torch
import torch.distributed as dist
from conftest import ROOT, assert_clear_error, seg_options, tool_command
from mmengine.config import Config
from torch.distributed.elastic.multiprocessing.errors import (ChildFailedError,
                                                               ProcessFailure)

from mmreplk.errors import ConfigError, DistributedError

from mmreplk.apis import dist as _dist
from mmreplk.apis import launch as _launch
CONFIG = 'configs/upernet_replk31b_ade20k.py'


# --------------------------------------------------------------------------- runs
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def _dist_train(config: str, options: dict, work_dir,
                **env: str) -> subprocess.CompletedProcess:
    """tools/dist_train.sh CONFIG 2 on CPU; whatever it leaves behind (a stopped
    rank) is killed with its process group."""
    env = dict(os.environ, PORT=str(_free_port()), OMP_NUM_THREADS='1', **env)
    options = dict(options, **{'env_cfg.dist_cfg.backend': 'gloo'})
    cmd = tool_command('dist_train.sh', config, '2', '--work-dir', str(work_dir),
                       options=options)
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, text=True, start_new_session=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        out, err = proc.communicate(timeout=180)
    finally:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait()
    return subprocess.CompletedProcess(cmd, proc.returncode, out, err)


@pytest.mark.slow
def test_two_cpu_processes_train_a_syncbn_config(ade20k_root, tmp_path):
    """The shipped config as it is (SyncBN everywhere): each process runs it as BN."""
    norms = Config.fromfile(str(ROOT / CONFIG)).model
    assert norms.backbone.norm_cfg.type == norms.decode_head.norm_cfg.type == 'SyncBN'
    result = _dist_train(CONFIG, seg_options(ade20k_root), tmp_path)
    log = result.stdout + result.stderr
    assert result.returncode == 0, log[-4000:]
    assert 'Distributed training: True' in log and 'GPU number: 2' in log
    assert 'SyncBatchNorm layers run as BatchNorm in this CPU process' in log
    assert 'Iter(train) [2/2]' in log
    assert os.path.isfile(tmp_path / 'iter_2.pth')


def _faulty_config(tmp_path, fault: str) -> str:
    """The shipped config plus a hook that makes rank 1 hang or signals it after its
    first iteration (tests/fault_hook.py)."""
    path = tmp_path / 'faulty.py'
    path.write_text(
        f'_base_ = [{str(ROOT / CONFIG)!r}]\n'
        "custom_imports = dict(imports=['mmreplk', 'mmreplk.engine', 'fault_hook'])\n"
        f"custom_hooks = [dict(type='FaultyRankHook', rank=1, after_iter=1, "
        f'fault={fault!r})]\n')
    return str(path)


FAULT_ENV = dict(PYTHONPATH=os.pathsep.join([str(ROOT / 'tests'), str(ROOT)]))


@pytest.mark.slow
def test_a_stuck_rank_ends_the_run_after_the_timeout(ade20k_root, tmp_path):
    """Rank 1 hangs (a SIGSTOPped rank is found the same way, but torchrun then
    gives it its 30 s SIGTERM grace before SIGKILL: too slow for the suite)."""
    options = dict(seg_options(ade20k_root, iters=4),
                   **{'env_cfg.dist_cfg.timeout': '10'})
    result = _dist_train(_faulty_config(tmp_path, 'hang'), options, tmp_path,
                         **FAULT_ENV)
    assert_clear_error(result, 'rank 1 stopped responding',
                       'that rank 0 gave up on', '10 s here')
    assert 'Iter(train) [1/4]' in result.stdout + result.stderr


@pytest.mark.slow
def test_a_killed_rank_ends_the_run_naming_it(ade20k_root, tmp_path):
    result = _dist_train(_faulty_config(tmp_path, 'SIGKILL'),
                         seg_options(ade20k_root, iters=4), tmp_path, **FAULT_ENV)
    assert_clear_error(result, 'distributed run stopped: rank 1 (local rank 1 on',
                       'was killed by SIGKILL')


# --------------------------------------------------------------------------- pieces
@pytest.mark.parametrize('timeout', [0, -5, '10', True])
def test_collective_timeout_must_be_positive_seconds(timeout):
    cfg = Config(dict(env_cfg=dict(dist_cfg=dict(backend='gloo', timeout=timeout))))
    with pytest.raises(ConfigError, match='env_cfg.dist_cfg.timeout must be a '
                       'positive number of seconds'):
        _dist.collective_timeout(cfg)
    cfg.env_cfg.dist_cfg.timeout = 7
    assert _dist.collective_timeout(cfg) == 7.0
    assert _dist.collective_timeout(Config(dict(env_cfg=dict()))) is None


@pytest.fixture
def one_process_group():
    """A gloo group of one process, in-process."""
    dist.init_process_group('gloo', store=dist.HashStore(), rank=0, world_size=1)
    yield
    dist.destroy_process_group()


def test_cpu_wrapper_turns_syncbn_into_bn(one_process_group, capsys):
    from mmengine.logging import MMLogger

    from mmreplk.registry import MODEL_WRAPPERS
    MMLogger.get_instance('test_cpu_wrapper', log_level='INFO')
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 1), torch.nn.SyncBatchNorm(4),
                                torch.nn.Sequential(torch.nn.SyncBatchNorm(4)))
    weight = model[1].weight
    wrapped = MODEL_WRAPPERS.build(
        dict(type='mmreplk.CPUDistributedDataParallel', device_ids=[0]),
        default_args=dict(module=model))
    norms = [m for m in wrapped.module.modules() if 'Norm' in type(m).__name__]
    assert len(norms) == 2
    assert not any(isinstance(m, torch.nn.SyncBatchNorm) for m in norms)
    assert wrapped.module[1].weight is weight  # the same parameters
    assert wrapped.device_ids is None
    assert '2 SyncBatchNorm layers run as BatchNorm' in capsys.readouterr().out
    wrapped(torch.randn(2, 3, 4, 4)).sum().backward()  # what DDP refused


def test_cpu_start_up_honours_the_timeout_and_picks_the_wrapper(monkeypatch):
    seen = {}
    monkeypatch.setattr(_dist.dist, 'init_process_group',
                        lambda **kwargs: seen.update(kwargs))
    cfg = Config(dict(launcher='pytorch', find_unused_parameters=True,
                      env_cfg=dict(dist_cfg=dict(backend='gloo', timeout=12))))
    _dist.init_cpu_distributed(cfg)
    assert seen == dict(backend='gloo', timeout=datetime.timedelta(seconds=12))
    assert cfg.model_wrapper_cfg == dict(
        type='mmreplk.CPUDistributedDataParallel', broadcast_buffers=False,
        find_unused_parameters=True)
    cfg.env_cfg.dist_cfg.backend = 'nccl'
    with pytest.raises(ConfigError, match='needs the gloo backend'):
        _dist.init_cpu_distributed(cfg)


def test_roll_call_names_the_ranks_that_did_not_fail_with_the_others():
    store = dist.HashStore()
    calls = [_dist.RollCall(store, r, 3, 10.0, prefix='t') for r in range(3)]
    assert calls[0].missing(window=0.3) == [1, 2]
    assert calls[2].missing(window=0.3) == [1]
    assert calls[0].first_to_report() and not calls[2].first_to_report()
    everyone = [_dist.RollCall(store, r, 2, 10.0, prefix='u') for r in range(2)]
    everyone[1].missing(window=0)
    assert everyone[0].missing(window=60) == []  # all there: no wait


def test_only_collective_failures_are_checked():
    gloo = RuntimeError('[/pytorch/third_party/gloo/gloo/transport/tcp/'
                        'unbound_buffer.cc:78] Timed out waiting 10000ms for recv '
                        'operation to complete')
    assert _dist.is_collective_failure(gloo)
    assert _dist.is_collective_failure(dist.DistBackendError('NCCL timeout'))
    assert not _dist.is_collective_failure(RuntimeError('CUDA out of memory'))
    assert not _dist.is_collective_failure(KeyError('gloo'))
    assert _dist._first_line(gloo) == ('Timed out waiting 10000ms for recv operation '
                                       'to complete')


def test_run_reports_a_lost_rank_in_one_line(monkeypatch, capsys):
    from mmreplk.apis import cli as common

    def lost(error):
        assert isinstance(error, RuntimeError)
        return DistributedError('distributed run stopped: rank 1 stopped responding')

    def collective():
        raise RuntimeError('Timed out waiting 10000ms for recv operation to complete')

    monkeypatch.setattr(common, 'lost_rank_error', lost)
    with pytest.raises(SystemExit) as info:
        common.run(collective)
    assert info.value.code == 1
    assert capsys.readouterr().err == (
        'error: distributed run stopped: rank 1 stopped responding\n')
    monkeypatch.setattr(common, 'lost_rank_error', lambda error: None)
    with pytest.raises(RuntimeError, match='Timed out'):  # all ranks alive: a bug
        common.run(collective)


def test_launch_line_names_the_first_failed_rank(tmp_path):
    def failure(local_rank, exitcode):
        return ProcessFailure(local_rank=local_rank, pid=100 + local_rank,
                              exitcode=exitcode, error_file=str(tmp_path / 'none'))

    killed = ChildFailedError('train.py', {1: failure(1, -signal.SIGKILL)})
    line = _launch.failure_line(killed)
    assert line.startswith('distributed run stopped: rank 1 (local rank 1 on ')
    assert line.endswith('pid 101) was killed by SIGKILL (out of memory, or killed '
                         'from outside)')
    assert 'exited with status 3' in _launch.failure_line(
        ChildFailedError('train.py', {0: failure(0, 3)}))
    # status 1: the worker printed its own error line
    assert _launch.failure_line(ChildFailedError('t', {0: failure(0, 1)})) is None
