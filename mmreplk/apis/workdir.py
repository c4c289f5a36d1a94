"""A work dir is owned by one run at a time, and must be writable before a run starts.

:func:`lock_work_dir` takes ``WORK_DIR/.lock`` (the pid, host and start time of the
owner, created exclusively) for the length of a run; a second run into the same work dir
is one :class:`~mmreplk.errors.WorkDirError` naming the owner. A lock left by a run
that died (same host, no such process) is stale: it is replaced, with a log line. In a
distributed run only the global rank 0 takes it.
"""
import contextlib
import json
import os
import os.path as osp
import socket
import tempfile
import time
from typing import Iterator, Optional

from mmengine.logging import print_log

from mmreplk.errors import WorkDirError

LOCK_NAME = '.lock'


def check_work_dir(work_dir: str) -> None:
    """Raise :class:`WorkDirError` if logs and checkpoints cannot be written to
    ``work_dir`` (created if missing): a read-only file system, no permission, no
    space for even a small file. Checked by writing and removing a probe file."""
    try:
        os.makedirs(work_dir, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix='.write_probe.', dir=work_dir)
        with os.fdopen(fd, 'wb') as f:
            f.write(b'\0' * 4096)
            f.flush()
            os.fsync(f.fileno())
        os.remove(probe)
    except OSError as e:
        raise WorkDirError(f'work dir {work_dir} is not writable ({e.strerror or e}): '
                           'logs and checkpoints could not be saved; pick another with '
                           '--work-dir') from None


def _global_rank() -> int:
    for name in ('RANK', 'SLURM_PROCID', 'OMPI_COMM_WORLD_RANK', 'PMI_RANK'):
        if os.environ.get(name, '').isdigit():
            return int(os.environ[name])
    return 0


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _owner(path: str) -> Optional[dict]:
    try:
        with open(path) as f:
            owner = json.load(f)
        return owner if isinstance(owner, dict) and isinstance(owner.get('pid'), int) \
            else None
    except (OSError, ValueError):
        return None


def _take(path: str) -> bool:
    me = dict(pid=os.getpid(), host=socket.gethostname(),
              started=time.strftime('%Y-%m-%d %H:%M:%S'))
    try:
        fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
    except FileExistsError:
        return False
    with os.fdopen(fd, 'w') as f:
        json.dump(me, f)
    return True


@contextlib.contextmanager
def lock_work_dir(work_dir: str) -> Iterator[None]:
    """Own ``work_dir`` for the block (see the module docstring)."""
    if _global_rank() != 0:
        yield
        return
    os.makedirs(work_dir, exist_ok=True)
    path = osp.join(work_dir, LOCK_NAME)
    while not _take(path):
        owner = _owner(path)
        here = socket.gethostname()
        if owner is not None and (owner.get('host') != here or _alive(owner['pid'])):
            raise WorkDirError(
                f'work dir {work_dir} is in use by another run (pid {owner["pid"]} on '
                f'{owner.get("host")}, started {owner.get("started")}): pick another '
                f'--work-dir, or wait for it; if that run is gone, remove {path}')
        if owner is None and time.time() - osp.getmtime(path) < 5:
            time.sleep(0.2)  # another run is writing its lock right now
            if _owner(path) is not None:
                continue
        print_log(f'removing the stale lock of a run that is gone: {path} '
                  f'({owner or "unreadable"})', logger='current')
        with contextlib.suppress(FileNotFoundError):
            os.remove(path)
    try:
        yield
    finally:
        owner = _owner(path)
        if owner and owner.get('pid') == os.getpid():
            with contextlib.suppress(FileNotFoundError):
                os.remove(path)


__all__ = ['LOCK_NAME', 'check_work_dir', 'lock_work_dir']
