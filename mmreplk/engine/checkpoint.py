"""Safe, atomic checkpoints for the mmengine runner.

* :class:`AtomicLocalBackend` (file backend ``'atomic_local'``): writes each
  file to a temporary sibling and ``os.replace``-s it, so a killed run never
  leaves a truncated checkpoint. The configs select it with
  ``default_hooks.checkpoint.backend_args=dict(backend='atomic_local')``;
  :func:`register_atomic_backend` registers it.
* :func:`allow_runner_checkpoints`: every load is ``weights_only=True``, which
  rejects mmengine's full runner checkpoints (message hub ``HistoryBuffer``
  objects holding numpy arrays). It allow-lists exactly those objects;
  ``getattr`` is replaced by a version that only resolves ``HistoryBuffer``'s
  statistics methods, so loading an arbitrary file stays as restricted as
  before. The allow-list of a renamed ``getattr`` needs torch >= 2.6, the
  package's floor.

Nothing here runs at import: ``mmreplk.engine`` calls both registrations.
"""
import os
import os.path as osp
import re
import zipfile
from pathlib import Path
from typing import Any, Optional, Union

import numpy as np
import torch
from mmengine.fileio import LocalBackend, register_backend
from mmengine.fileio.backends import backends
from mmengine.logging.history_buffer import HistoryBuffer

from mmreplk.utils import atomic_write


class AtomicLocalBackend(LocalBackend):
    """Local file backend whose writes are atomic (temp file + os.replace)."""

    def put(self, obj: bytes, filepath: Union[str, Path]) -> None:
        """Write ``obj`` to ``filepath`` atomically, creating its folder."""
        atomic_write(obj, str(filepath))

    def put_text(self,
                 obj: str,
                 filepath: Union[str, Path],
                 encoding: str = 'utf-8') -> None:
        """Write text atomically."""
        self.put(obj.encode(encoding), filepath)


def register_atomic_backend() -> None:
    """Register :class:`AtomicLocalBackend` as the ``'atomic_local'`` file backend.

    Idempotent; another backend already registered under that name is an error
    (mmengine's KeyError), not silently replaced.
    """
    if backends.get('atomic_local') is not AtomicLocalBackend:
        register_backend('atomic_local', AtomicLocalBackend)


_HISTORY_METHODS = ('min', 'max', 'current', 'mean')


def _history_buffer_getattr(obj: Any, name: str) -> Any:
    """``getattr`` restricted to ``HistoryBuffer``'s statistics methods."""
    if obj is HistoryBuffer and name in _HISTORY_METHODS:
        return getattr(obj, name)
    raise torch.serialization.pickle.UnpicklingError(
        f'refusing getattr({obj!r}, {name!r}) while loading a checkpoint')


def allow_runner_checkpoints() -> None:
    """Allow-list the globals of mmengine runner checkpoints for
    ``torch.load(weights_only=True)`` (idempotent: only missing entries are added)."""
    # numpy 2 moved numpy.core to numpy._core (1.26 has a _core without multiarray)
    multiarray = np.core.multiarray if np.__version__ < '2' else np._core.multiarray
    numpy_types = [np.ndarray, np.dtype, multiarray._reconstruct, multiarray.scalar]
    numpy_types += [getattr(np.dtypes, n) for n in dir(np.dtypes)
                    if n.endswith('DType')]
    wanted = [HistoryBuffer, (_history_buffer_getattr, 'builtins.getattr')] + numpy_types
    present = torch.serialization.get_safe_globals()
    missing = [g for g in wanted if g not in present]
    if missing:
        torch.serialization.add_safe_globals(missing)


def _complete(path: str) -> bool:
    """Whether ``path`` is a whole torch zip checkpoint (its central directory, written
    last, is there)."""
    try:
        with zipfile.ZipFile(path) as archive:
            return bool(archive.namelist())
    except (OSError, zipfile.BadZipFile):
        return False


def checkpoint_folder(work_dir: str, out_dir: Optional[str] = None) -> str:
    """Where a run in ``work_dir`` keeps its checkpoints: ``work_dir``, or with the
    checkpoint hook's ``out_dir``, ``out_dir/<name of work_dir>`` (as mmengine's
    ``CheckpointHook`` places them)."""
    if not out_dir or out_dir == work_dir:
        return work_dir
    return osp.join(out_dir, osp.basename(osp.normpath(work_dir)))


def latest_checkpoint(work_dir: str, out_dir: Optional[str] = None) -> Optional[str]:
    """The newest complete checkpoint of the run in ``work_dir``, the one an
    interrupted run resumes from: the highest ``iter_N.pth`` / ``epoch_N.pth`` whose file
    is whole, in ``work_dir`` or its :func:`checkpoint_folder`. mmengine's
    ``last_checkpoint`` pointer is not read: a run killed while saving leaves it naming
    an older file (or one already removed), and a work dir copied from another run
    names that run's folder. None when there is no checkpoint.
    """
    found = []
    for folder in {work_dir, checkpoint_folder(work_dir, out_dir)}:
        for name in os.listdir(folder) if osp.isdir(folder) else []:
            m = re.fullmatch(r'(?:iter|epoch)_(\d+)\.pth', name)
            path = osp.join(folder, name)
            if m and _complete(path):
                found.append((int(m.group(1)), osp.getmtime(path), path))
    return max(found)[2] if found else None
