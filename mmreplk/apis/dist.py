"""The worker side of distributed runs (``--launcher pytorch|slurm|mpi``): the collective
timeout, CPU start-up, and naming the rank that stopped when a run breaks.

* :func:`collective_timeout` reads ``env_cfg.dist_cfg.timeout`` (seconds). mmengine's
  ``init_dist`` passes it to ``init_process_group`` on GPU; :func:`init_cpu_distributed`
  does the same on CPU. Without it torch's defaults hold: 30 min for gloo, 10 min for
  NCCL.
* :func:`init_cpu_distributed` starts the gloo group of a ``--launcher pytorch`` run
  without CUDA (mmengine's ``init_dist`` calls ``torch.cuda.set_device``) and wraps the
  model in ``mmreplk.CPUDistributedDataParallel``, which turns SyncBN into BN.
* :func:`lost_rank_error`, called by :func:`mmreplk.apis.cli.run` when a run raises, turns a failed
  collective operation (a timeout, a closed connection) into one line naming the ranks
  that did not take part (:class:`DistributedError`) instead of this rank's traceback:
  the ranks whose collective failed register in the job's rendezvous store
  (``MASTER_ADDR:MASTER_PORT``: torchrun's agent, or rank 0 under Slurm / MPI) and wait
  :data:`WINDOW` seconds for each other (:class:`RollCall`); the ranks missing then are
  the stuck, stopped or dead ones. :func:`watch_ranks` (:func:`mmreplk.apis.runner.build_runner`)
  prepares it once the process group exists.
"""
import datetime
import os
import re
import time
from typing import List, Optional

import torch
import torch.distributed as dist
from mmengine.config import Config
from torch.distributed.constants import default_pg_nccl_timeout, default_pg_timeout

from mmreplk.errors import ConfigError, DistributedError

#: Seconds a rank whose collective failed waits for the others to fail too (the delay
#: the diagnosis adds; live ranks enter a collective within a shorter spread).
WINDOW = 5.0
_STORE_TIMEOUT = datetime.timedelta(seconds=5)


def collective_timeout(cfg: Config) -> Optional[float]:
    """``env_cfg.dist_cfg.timeout`` in seconds, or None where the config leaves it
    unset; :class:`ConfigError` unless it is a positive number."""
    timeout = cfg.get('env_cfg', {}).get('dist_cfg', {}).get('timeout')
    if timeout is None:
        return None
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or (
            timeout <= 0):
        raise ConfigError(
            f'env_cfg.dist_cfg.timeout must be a positive number of seconds, got '
            f'{timeout!r} (e.g. --cfg-options env_cfg.dist_cfg.timeout=600)')
    return float(timeout)


def init_cpu_distributed(cfg: Config) -> None:
    """Start the process group of a ``--launcher pytorch`` run without CUDA.

    mmengine's ``init_dist`` calls ``torch.cuda.set_device``, which a CPU-only torch
    lacks; the runner skips it when the group already exists. The backend must be gloo
    (``env_cfg.dist_cfg.backend``), the timeout is ``env_cfg.dist_cfg.timeout``. The
    model is wrapped in ``mmreplk.CPUDistributedDataParallel`` (DDP without
    ``device_ids``, SyncBN turned into BN) unless the config names another wrapper than
    mmengine's ``MMDistributedDataParallel``.
    """
    if cfg.launcher != 'pytorch' or torch.cuda.is_available() or (
            dist.is_initialized()):
        return
    backend = cfg.get('env_cfg', {}).get('dist_cfg', {}).get('backend')
    if backend != 'gloo':
        raise ConfigError(
            f'distributed training without CUDA needs the gloo backend, the config '
            f'has {backend!r}: add --cfg-options env_cfg.dist_cfg.backend=gloo')
    timeout = collective_timeout(cfg)
    kwargs = {} if timeout is None else dict(
        timeout=datetime.timedelta(seconds=timeout))
    dist.init_process_group(backend='gloo', **kwargs)
    wrapper = cfg.get('model_wrapper_cfg')
    if wrapper is None:
        # mmengine's defaults for a config without model_wrapper_cfg
        cfg.model_wrapper_cfg = dict(
            type='mmreplk.CPUDistributedDataParallel', broadcast_buffers=False,
            find_unused_parameters=cfg.get('find_unused_parameters', False))
    elif wrapper.get('type', 'MMDistributedDataParallel') == (
            'MMDistributedDataParallel'):
        wrapper.type = 'mmreplk.CPUDistributedDataParallel'
    else:
        wrapper.setdefault('device_ids', None)


# --------------------------------------------------------------------------- roll call
def is_collective_failure(error: BaseException) -> bool:
    """Whether ``error`` is a failed collective or store operation: torch's
    ``DistError`` family (NCCL, the store) or gloo's RuntimeError (its message
    starts with the gloo source file: "... gloo/transport/tcp/pair.cc:553]
    Connection closed by peer", "... unbound_buffer.cc:78] Timed out waiting 10000ms
    for recv operation to complete")."""
    return isinstance(error, dist.DistError) or (
        isinstance(error, RuntimeError) and 'gloo' in str(error))


class RollCall:
    """Which ranks did not fail with the others: each rank whose collective operation
    failed registers in the job's store and waits up to ``window`` seconds for the
    rest; the ranks missing then are the ones the others waited for (stopped, hung,
    dead, or busy elsewhere longer than the timeout).

    Args:
        store: the job's key-value store.
        rank, world_size: this process's rank and the number of ranks.
        timeout: the collective timeout in seconds, for the message.
        prefix: key prefix, distinct per launch attempt.
    """

    def __init__(self, store: dist.Store, rank: int, world_size: int,
                 timeout: float, prefix: str = 'mmreplk/failed') -> None:
        self.store, self.rank, self.world_size = store, rank, world_size
        self.timeout, self.prefix = timeout, prefix

    def missing(self, window: float = WINDOW) -> List[int]:
        """Register this rank, wait until every rank has or ``window`` seconds have
        passed, and return the ranks that have not (store errors propagate)."""
        self.store.set(f'{self.prefix}/{self.rank}', '1')
        count = f'{self.prefix}/count'
        deadline = time.monotonic() + window
        arrived = self.store.add(count, 1)
        while arrived < self.world_size and time.monotonic() < deadline:
            time.sleep(0.2)
            arrived = self.store.add(count, 0)  # add(key, 0) reads a counter
        if arrived >= self.world_size:
            return []
        return [r for r in range(self.world_size)
                if not self.store.check([f'{self.prefix}/{r}'])]

    def first_to_report(self) -> bool:
        """True for the first rank that asks."""
        return self.store.add(f'{self.prefix}/reported', 1) == 1


_roll_call: Optional[RollCall] = None


def watch_ranks(cfg: Config) -> None:
    """Get ready to name the ranks that stop a distributed run (once the runner has
    started the process group): a client of the job's store (launched with env://:
    ``MASTER_ADDR``, ``MASTER_PORT``, as torchrun and mmengine's Slurm and MPI set-ups
    do) and the timeout."""
    global _roll_call
    address = os.environ.get('MASTER_ADDR'), os.environ.get('MASTER_PORT')
    if not dist.is_initialized() or dist.get_world_size() < 2 or None in address:
        return  # not distributed, or a dist_cfg.init_method other than env://
    store = dist.TCPStore(address[0], int(address[1]), is_master=False,
                          timeout=_STORE_TIMEOUT)
    attempt = os.environ.get('TORCHELASTIC_RESTART_COUNT', '0')
    default = (default_pg_nccl_timeout if 'nccl' in dist.get_backend() else
               None) or default_pg_timeout
    timeout = collective_timeout(cfg) or default.total_seconds()
    _roll_call = RollCall(store, dist.get_rank(), dist.get_world_size(), timeout,
                          prefix=f'mmreplk/failed/{attempt}')


def _first_line(error: BaseException) -> str:
    """The error's first line without the C++ source location gloo puts first."""
    lines = str(error).strip().splitlines()
    text = re.sub(r'^\[[^\]]*:\d+\]\s*', '', lines[0]) if lines else ''
    return text or type(error).__name__


def lost_rank_error(error: BaseException) -> Optional[DistributedError]:
    """If ``error`` is a collective operation of a distributed run that failed because
    other ranks did not join it, the :class:`DistributedError` naming them; None
    otherwise (not distributed, not a collective failure, every rank failed alike, or
    the store unreachable: the error is this rank's own).

    All ranks that fail this way find the same; the first to finish reports at once,
    the others wait a little, so that the launcher, which stops the job when the first
    one exits, normally leaves one line.
    """
    roll_call = _roll_call
    if roll_call is None or not is_collective_failure(error):
        return None
    try:
        missing = roll_call.missing()
        if not missing:
            return None
        first = roll_call.first_to_report()
    except RuntimeError:  # DistStoreError, DistNetworkError: the store is gone
        return None
    names = ', '.join(map(str, missing))
    lost = DistributedError(
        f'distributed run stopped: rank{"s" if len(missing) > 1 else ""} {names} '
        f'stopped responding: not in the collective operation that rank '
        f'{roll_call.rank} gave up on ({_first_line(error)}); stuck, stopped, dead or '
        f'busy for longer than the collective timeout, {roll_call.timeout:g} s here '
        '(--cfg-options env_cfg.dist_cfg.timeout=SECONDS)')
    if not first:
        time.sleep(2 * WINDOW)
    return lost
