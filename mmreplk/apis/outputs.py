"""No tool overwrites a file it did not create in this run or that is one of its inputs.

Every tool that writes files names them with :func:`check_outputs` before it reads or
computes anything: an output that is one of the inputs (the same path, or another name
of the same file), a folder, an output named twice, or a file that already exists
without ``--force`` is one :class:`~mmreplk.errors.ConfigError` naming it.
"""
import argparse
import os
import os.path as osp
from typing import Dict, Iterable, Optional

from mmreplk.errors import ConfigError


def add_force(parser: argparse.ArgumentParser) -> None:
    """``--force``: replace output files that already exist."""
    parser.add_argument('--force', action='store_true',
                        help='replace output files that already exist (never an input)')


def _same(a: str, b: str) -> bool:
    if osp.abspath(a) == osp.abspath(b):
        return True
    try:
        return osp.samefile(a, b)
    except OSError:
        return False


def check_outputs(outputs: Dict[str, Optional[str]], inputs: Iterable[Optional[str]],
                  force: bool = False) -> None:
    """Raise :class:`ConfigError` unless every output may be written.

    Args:
        outputs: ``{what: path}`` of the files this run will write (``None``: not
            written), e.g. ``{'output checkpoint': 'out.pth'}``.
        inputs: the files this run reads.
        force: whether existing outputs (never inputs) may be replaced.
    """
    inputs = [p for p in inputs if p and '://' not in p]
    seen: Dict[str, str] = {}
    for what, path in outputs.items():
        if not path:
            continue
        for source in inputs:
            if _same(path, source):
                raise ConfigError(f'the {what} {path} is also an input of this run; '
                                  'name another output file')
        key = osp.abspath(path)
        if key in seen:
            raise ConfigError(f'the {what} and the {seen[key]} are the same file {path}; '
                              'name different files')
        seen[key] = what
        if osp.isdir(path):
            raise ConfigError(f'the {what} {path} is a folder; name a file')
        if osp.lexists(path) and not force:
            raise ConfigError(f'the {what} {path} exists; pass --force to replace it')
        folder = osp.dirname(osp.abspath(path))
        existing = folder
        while not osp.isdir(existing):
            if osp.exists(existing):
                raise ConfigError(f'the {what} {path} cannot be written: {existing} is '
                                  'a file, not a folder')
            existing = osp.dirname(existing)
        if not os.access(existing, os.W_OK):
            raise ConfigError(f'the {what} {path} cannot be written: {existing} is not '
                              'writable')


__all__ = ['add_force', 'check_outputs']
