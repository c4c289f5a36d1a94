"""Checkpoint file I/O: atomic writes and loads with clear errors."""
import hashlib
import io
import os
import os.path as osp
import pickle
import re
import tempfile
import zipfile
from typing import Any, Optional
from urllib.error import HTTPError, URLError
from urllib.parse import urlparse

import torch

from mmreplk.errors import CheckpointError, CheckpointNotFoundError

TMP_SUFFIX = '.tmp'


def atomic_write(data: bytes, path: str) -> None:
    """Write ``data`` to a temporary file beside ``path`` (``.NAME.XXXX.tmp``), flush it
    to disk, rename it into place and flush the folder, so that ``path`` is either the
    old file or the whole new one, whenever the process dies. The file gets the mode
    ``open()`` and ``torch.save`` give (0666 less the umask). A failed write (a full
    disk) removes the temporary file and leaves ``path`` as it was."""
    folder = osp.dirname(osp.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f'.{osp.basename(path)}.', suffix=TMP_SUFFIX,
                               dir=folder)
    try:
        umask = os.umask(0)
        os.umask(umask)
        os.fchmod(fd, 0o666 & ~umask)
        with os.fdopen(fd, 'wb') as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if osp.exists(tmp):
            os.remove(tmp)
        raise
    dir_fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def is_atomic_temporary(name: str) -> bool:
    """Whether ``name`` is the temporary file of an :func:`atomic_write` (of a write
    that never finished, once no write is running)."""
    return bool(re.fullmatch(r'\..+\.[A-Za-z0-9_]{8}' + re.escape(TMP_SUFFIX), name))


def atomic_save(obj: Any, path: str) -> None:
    """``torch.save`` ``obj`` to ``path`` atomically (see :func:`atomic_write`)."""
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    atomic_write(buffer.getvalue(), path)


_ZIP_MAGIC = b'PK\x03\x04'   # torch.save since 1.6
_PICKLE_MAGIC = b'\x80'         # the legacy format: a pickle protocol 2+ header


def check_checkpoint_file(path: str) -> None:
    """Raise the error :func:`load_checkpoint_file` would for a file that is missing,
    empty or not a torch checkpoint at all, without reading more than its header."""
    if osp.isdir(path):
        raise CheckpointError(f'{path} is a folder, not a checkpoint file')
    if not osp.isfile(path):
        raise CheckpointNotFoundError(f'checkpoint not found: {path}')
    size = osp.getsize(path)
    if size == 0:
        raise CheckpointError(f'checkpoint {path} is empty (0 bytes): an interrupted '
                              'download or copy? Fetch or copy it again')
    with open(path, 'rb') as f:
        head = f.read(4)
    if not head.startswith((_ZIP_MAGIC, _PICKLE_MAGIC)):
        raise CheckpointError(f'{path} is not a torch checkpoint: torch.save writes a zip '
                              f'archive (a pickle before torch 1.6); this file starts with '
                              f'{head!r}')


def _refusal(path: str, error: Exception) -> CheckpointError:
    """The error for a file that safe loading refused: the objects it would have run."""
    try:
        names = torch.serialization.get_unsafe_globals_in_checkpoint(path)
    except Exception:  # a legacy (non-zip) file: torch names the first one it met
        names = re.findall(r'Unsupported global: GLOBAL (\S+)', str(error))
    what = ', '.join(names) if names else 'a Python object'
    recipe = (f"python -c \"import torch; c = torch.load('{path}', weights_only=False); "
              "sd = c.get('state_dict', c); torch.save({'state_dict': {k: v for k, v in "
              f"sd.items() if isinstance(v, torch.Tensor)}}}}, '{path}.weights.pth')\"")
    return CheckpointError(
        f'{path} is not plain weights: it holds Python objects that loading would import '
        f'and call ({what}). It was NOT loaded, and none of its code ran. If you trust '
        f'the file and its source, save its tensors as plain weights once: {recipe}')


def load_checkpoint_file(path: str, map_location: Any = 'cpu') -> Any:
    """Load a checkpoint (local path or URL) with ``weights_only=True``: tensors,
    containers and numbers (and mmengine runner state once :mod:`mmreplk.engine` is
    imported), never code.

    Every failure is one :class:`CheckpointNotFoundError` (a FileNotFoundError) or
    :class:`CheckpointError` (a ValueError) that names the file and the cause: missing,
    empty, not a torch file, corrupt or truncated, or holding Python objects (named;
    not loaded, not run).
    """
    if path.startswith(('http://', 'https://')):
        path = download_checkpoint(path)
    elif '://' in path:  # mmengine's other schemes (s3://, pavi://, open-mmlab://, ...)
        from mmengine.runner import CheckpointLoader
        return CheckpointLoader.load_checkpoint(path, map_location=map_location)
    path = osp.expanduser(path)
    check_checkpoint_file(path)
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as e:
        if 'Unsupported global' in str(e) or 'Weights only load failed' in str(e):
            raise _refusal(path, e) from None
        raise _corrupt(path, e) from None
    except (RuntimeError, EOFError, zipfile.BadZipFile, ValueError, OSError) as e:
        raise _corrupt(path, e) from None


def _corrupt(path: str, error: Exception) -> CheckpointError:
    return CheckpointError(f'checkpoint {path} is corrupt or truncated '
                           f'({osp.getsize(path)} bytes; {type(error).__name__}: '
                           f'{str(error).strip().splitlines()[0]})')


def cached_name(url: str) -> str:
    """The file name of ``url``'s copy in the download cache: the URL's own file name
    behind a hash of the whole URL, so that two URLs ending in the same name
    (``.../a/model.pth``, ``.../b/model.pth``) never share a copy."""
    digest = hashlib.sha256(url.encode()).hexdigest()[:16]
    return f'{digest}-{osp.basename(urlparse(url).path) or "checkpoint.pth"}'


def download_checkpoint(url: str, model_dir: Optional[str] = None,
                        progress: bool = True) -> str:
    """The local copy of the checkpoint at ``url`` in torch hub's cache (``model_dir``,
    default ``$TORCH_HOME/hub/checkpoints``; named by :func:`cached_name`), downloaded
    once, atomically. A URL that cannot be fetched is one :class:`CheckpointError` (or
    :class:`CheckpointNotFoundError` for HTTP 404) naming it and the cause."""
    model_dir = model_dir or osp.join(torch.hub.get_dir(), 'checkpoints')
    os.makedirs(model_dir, exist_ok=True)
    cached = osp.join(model_dir, cached_name(url))
    if not osp.isfile(cached):
        try:
            torch.hub.download_url_to_file(url, cached, progress=progress)
        except HTTPError as e:
            kind = CheckpointNotFoundError if e.code == 404 else CheckpointError
            raise kind(f'could not download checkpoint {url}: HTTP {e.code} '
                       f'{e.reason}') from None
        except (URLError, OSError) as e:
            reason = getattr(e, 'reason', None) or e.strerror or e
            raise CheckpointError(f'could not download checkpoint {url}: {reason} '
                                  '(no network? download it by hand and give the local '
                                  'path)') from None
    return cached
