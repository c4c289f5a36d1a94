"""torchrun, ending a failed run with one line that names the rank that failed first.

``tools/dist_train.sh`` and ``tools/dist_test.sh`` run ``python -m mmreplk.apis.launch
TORCHRUN_ARGS... SCRIPT ARGS...``: torchrun's own arguments and behaviour
(``torch.distributed.run``). When a worker fails, torchrun stops the others on this
node (SIGTERM, then SIGKILL after its shutdown grace: 30 s, or
``TORCH_ELASTIC_SHUTDOWN_TIMEOUT`` / ``--shutdown-timeout`` where torch has them) and
raises ``ChildFailedError``; instead of its traceback and table this prints, on stderr:

* nothing more if the first failed worker exited with status 1: it said why itself (an
  ``error:`` line from ``mmreplk.apis.cli.run``, e.g. another rank stopped responding, or a
  traceback);
* else ``error: distributed run stopped: rank R (local rank L on HOST, pid P) was
  killed by SIGNAL`` (or ``exited with status N``), e.g. a worker killed by the
  kernel's out-of-memory killer;

and exits with status 1.
"""
import signal
import socket
import sys
from typing import Optional

from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
from torch.distributed.run import parse_args, run

_HINTS = {signal.SIGKILL: ' (out of memory, or killed from outside)'}


def failure_line(error: ChildFailedError) -> Optional[str]:
    """The one line for the first failure of ``error``, or None if that worker
    exited with status 1 (it printed its own message)."""
    rank, failure = error.get_first_failure()
    if failure.exitcode == 1:
        return None
    where = f'local rank {failure.local_rank} on {socket.gethostname()}, pid ' \
            f'{failure.pid}'
    if failure.exitcode < 0:
        how = f'was killed by {failure.signal_name()}' + _HINTS.get(
            -failure.exitcode, '')
    else:
        how = f'exited with status {failure.exitcode}'
    return f'distributed run stopped: rank {rank} ({where}) {how}'


def main() -> None:
    try:
        run(parse_args(sys.argv[1:]))
    except ChildFailedError as e:
        line = failure_line(e)
        if line:
            print(f'error: {line}', file=sys.stderr)
        sys.exit(1)


if __name__ == '__main__':
    main()
