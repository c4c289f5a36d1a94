"""A work dir is owned by one run at a time (mmreplk.apis.lock_work_dir): a live owner
is one line, a dead one's lock is replaced, the lock goes with the run."""
import json
import socket
import subprocess
import sys

import pytest

from mmreplk.apis import lock_work_dir
from mmreplk.apis.workdir import LOCK_NAME
from mmreplk.errors import WorkDirError


def _dead_pid() -> int:
    return subprocess.run([sys.executable, '-c', 'import os; print(os.getpid())'],
                          capture_output=True, text=True, check=True).stdout.strip()


def _write_lock(folder, **owner):
    folder.mkdir(exist_ok=True)
    (folder / LOCK_NAME).write_text(json.dumps(owner))


def test_the_lock_is_held_for_the_block_and_released(tmp_path):
    with lock_work_dir(str(tmp_path / 'run')):
        owner = json.loads((tmp_path / 'run' / LOCK_NAME).read_text())
        assert owner['host'] == socket.gethostname()
        with pytest.raises(WorkDirError, match=r'is in use by another run \(pid \d+'):
            with lock_work_dir(str(tmp_path / 'run')):
                pass
    assert not (tmp_path / 'run' / LOCK_NAME).exists()
    with pytest.raises(RuntimeError):
        with lock_work_dir(str(tmp_path / 'run')):
            raise RuntimeError('the run failed')
    assert not (tmp_path / 'run' / LOCK_NAME).exists()  # released on failure too


@pytest.mark.parametrize('owner, taken', [
    ('live, this host', False),
    ('live, another host', False),
    ('dead, this host', True),
    ('dead, another host', False),  # cannot be told from here: the user decides
    ('unreadable', True),
])
def test_an_existing_lock(tmp_path, owner, taken):
    import os
    pid = os.getppid() if owner.startswith('live') else int(_dead_pid())
    host = 'elsewhere' if 'another' in owner else socket.gethostname()
    if owner == 'unreadable':
        (tmp_path / LOCK_NAME).write_text('{not json')
        os.utime(tmp_path / LOCK_NAME, (0, 0))
    else:
        _write_lock(tmp_path, pid=pid, host=host, started='then')
    if taken:
        with lock_work_dir(str(tmp_path)):
            assert json.loads((tmp_path / LOCK_NAME).read_text())['pid'] == os.getpid()
    else:
        with pytest.raises(WorkDirError, match=f'pid {pid} on {host}.*remove .*{LOCK_NAME}'):
            with lock_work_dir(str(tmp_path)):
                pass


def test_only_global_rank_0_takes_it(tmp_path, monkeypatch):
    monkeypatch.setenv('RANK', '1')
    with lock_work_dir(str(tmp_path)):
        assert not (tmp_path / LOCK_NAME).exists()


def test_train_py_refuses_a_work_dir_in_use(tmp_path, monkeypatch, capsys, ade20k_root):
    """Two trainings into one work dir: the second is one line, before any runner."""
    import os
    from conftest import LEARN_CONFIG, ROOT, import_tool, loader_options
    _write_lock(tmp_path, pid=os.getpid(), host=socket.gethostname(), started='now')
    train = import_tool('train.py')
    options = [f'{k}={v}' for k, v in loader_options(ade20k_root).items()]
    monkeypatch.setattr('sys.argv', ['train.py', str(ROOT / LEARN_CONFIG), '--work-dir',
                                     str(tmp_path), '--cfg-options'] + options)
    with pytest.raises(SystemExit):
        train.run(train.main)
    err = capsys.readouterr().err
    assert err.count('error: ') == 1 and f'pid {os.getpid()}' in err, err
    assert not list(tmp_path.glob('*.pth')) and not list(tmp_path.glob('2*'))  # no run
