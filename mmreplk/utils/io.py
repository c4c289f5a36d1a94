"""Checkpoint file I/O: atomic writes and loads with clear errors."""
import io
import os
import pickle
import re
import tempfile
import zipfile
from typing import Any

import torch

from mmreplk.errors import CheckpointError, CheckpointNotFoundError


def atomic_write(data: bytes, path: str) -> None:
    """Write ``data`` to a temporary file beside ``path``, then rename it into place.

    A crash mid-write leaves any earlier file at ``path`` intact.
    """
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f'.{os.path.basename(path)}.', suffix='.tmp',
                               dir=folder)
    try:
        with os.fdopen(fd, 'wb') as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def atomic_save(obj: Any, path: str) -> None:
    """``torch.save`` ``obj`` to ``path`` atomically (see :func:`atomic_write`)."""
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    atomic_write(buffer.getvalue(), path)


def load_checkpoint_file(path: str, map_location: str = 'cpu') -> Any:
    """Load a checkpoint (local path or URL) with ``weights_only=True``.

    Raises :class:`CheckpointNotFoundError` (a FileNotFoundError) / :class:`CheckpointError`
    (a ValueError) that name the file when it is missing, corrupt or truncated.
    """
    if '://' in path:
        from mmengine.runner import CheckpointLoader
        return CheckpointLoader.load_checkpoint(path, map_location=map_location)
    if not os.path.isfile(path):
        raise CheckpointNotFoundError(f'Checkpoint file not found: {path}')
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as e:
        found = re.search(r'Unsupported global: GLOBAL (\S+)', str(e))
        if found is None:
            raise CheckpointError(f'Checkpoint file {path} is corrupt or truncated (not '
                                  'a readable torch checkpoint)') from e
        raise CheckpointError(f'Checkpoint file {path} holds a Python object '
                              f'({found[1]}) that safe (weights_only) loading '
                              'refuses') from e
    except (RuntimeError, EOFError, zipfile.BadZipFile, ValueError, OSError) as e:
        raise CheckpointError(f'Checkpoint file {path} is corrupt or truncated '
                              f'({type(e).__name__}: {str(e).splitlines()[0]})') from e
