"""A hook that makes one rank of a distributed test run fail on purpose, at a fixed
iteration: test_distributed.py imports it into the run with ``custom_imports`` (the
test puts tests/ on PYTHONPATH)."""
import os
import signal
import threading

from mmengine.dist import get_rank
from mmengine.hooks import Hook
from mmengine.registry import HOOKS


@HOOKS.register_module()
class FaultyRankHook(Hook):
    """Once training iteration ``after_iter`` (1-based) of ``rank`` is done, that rank
    hangs for good (``fault='hang'``: its main thread blocks, as in a deadlock; signals
    still end it) or sends itself a signal (``fault='SIGKILL'``, ``'SIGSTOP'``, ...)."""

    def __init__(self, rank: int, after_iter: int, fault: str) -> None:
        self.rank, self.after_iter, self.fault = rank, after_iter, fault

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None):
        if get_rank() != self.rank or runner.iter + 1 != self.after_iter:
            return
        if self.fault == 'hang':
            threading.Event().wait()
        os.kill(os.getpid(), getattr(signal, self.fault))
