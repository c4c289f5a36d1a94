"""The command-line boundary every tool shares: the exit convention and the arguments.

:func:`run` runs a tool's ``main``; a :class:`mmreplk.errors.MMReplkError` (a user
mistake: missing data or checkpoint, bad argument) and every other exception a user can
cause (:func:`user_error`: a missing file, a config's syntax error, a registry typo, a
URL that cannot be fetched, a full disk) becomes one line ``error: <message>`` on stderr
and exit status 1; argparse's usage errors keep their status 2; ``--debug``
keeps every traceback (docs/design.md, "Errors and exit statuses").
"""
import argparse
import errno
import json
import os
import sys
from typing import Callable, Optional, Union
from urllib.error import HTTPError, URLError

from mmengine.config import DictAction

from mmreplk.errors import MMReplkError
from mmreplk.models.arch import ARCH_ZOO

from .dist import lost_rank_error


def _first(text: object) -> str:
    lines = str(text).strip().splitlines()
    return lines[0] if lines else ''


def _os_error(e: OSError) -> str:
    if e.errno == errno.ENOSPC:
        return f'no space left on the device writing {e.filename or "a file"}'
    where = f': {e.filename}' if e.filename else ''
    return f'{e.strerror or _first(e)}{where}'


def _registry_key(e: KeyError) -> Optional[str]:
    text = str(e.args[0]) if e.args else ''
    return text if 'registry' in text and 'is not in the' in text else None


def user_error(e: BaseException) -> Optional[str]:
    """The one line for an exception a user can cause (a mistake in a config, a file,
    an argument, the network, the disk), or None for anything else (a bug: its traceback
    is kept)."""
    if isinstance(e, MMReplkError):
        return str(e)
    if isinstance(e, HTTPError):
        return f'could not download {e.url}: HTTP {e.code} {e.reason}'
    if isinstance(e, URLError):
        return f'could not reach a URL: {e.reason} (no network?)'
    if isinstance(e, OSError) and (e.filename or e.errno == errno.ENOSPC):
        return _os_error(e)
    if isinstance(e, SyntaxError):
        return f'syntax error in {e.filename}, line {e.lineno}: {e.msg}'
    if isinstance(e, RecursionError):
        return 'recursion too deep (a structure that contains itself?)'
    if isinstance(e, ModuleNotFoundError):
        return f'no module named {e.name!r} (a typo in custom_imports, or not installed?)'
    if isinstance(e, KeyError) and _registry_key(e):
        return _registry_key(e)
    if type(e).__module__.startswith('yaml'):
        return f'YAML error: {_first(e)}'
    lost = lost_rank_error(e)
    return None if lost is None else str(lost)


def run(main: Callable[[], object]) -> None:
    """Run ``main()`` under the tools' exit convention (see the module docstring): the
    one top-level handler of each tool, where every exception a user can cause
    (:func:`user_error`) becomes one ``error:`` line. In a distributed run, an error
    that other ranks caused by stopping is reported as theirs
    (:func:`.dist.lost_rank_error`). ``--debug`` keeps every traceback."""
    try:
        main()
    except Exception as e:
        line = user_error(e)
        if line is None or '--debug' in sys.argv[1:]:
            raise
        print(f'error: {line}', file=sys.stderr)
        sys.exit(1)


# --------------------------------------------------------------------------- arguments
class CfgOptionsAction(DictAction):
    """mmengine's ``DictAction``, with a usage error naming the option that does not
    parse (instead of an AssertionError or ValueError traceback)."""

    def __call__(self, parser, namespace, values, option_string=None):
        for value in values:
            try:
                super().__call__(parser, argparse.Namespace(), [value], option_string)
            except (AssertionError, ValueError, IndexError) as e:
                parser.error(f'{option_string} {value!r} does not parse: expected '
                             f'KEY=VALUE (VALUE a number, string, list [a,b] or tuple '
                             f'(a,b)); {e}')
        super().__call__(parser, namespace, values, option_string)


def add_cfg_options(parser: argparse.ArgumentParser) -> None:
    """``--cfg-options key=value ...``, as in mmseg's and mmdet's tools, and
    ``--debug``."""
    parser.add_argument(
        '--cfg-options', nargs='+', action=CfgOptionsAction,
        help='override settings of the config, key=value (e.g. '
        'model.backbone.drop_path_rate=0.3 train_dataloader.batch_size=4). Changing '
        'train_cfg.max_iters / max_epochs alone rescales the lr schedule to it')
    parser.add_argument('--debug', action='store_true',
                        help='show the traceback of every error, also of the one-line '
                        'ones about a config, data set or checkpoint')


def parse_runner_args(parser: argparse.ArgumentParser) -> argparse.Namespace:
    """Add what train.py and test.py share (``--cfg-options``, ``--non-strict``,
    ``--launcher``, ``--local-rank``), parse, and export ``LOCAL_RANK`` as mmengine expects."""
    add_cfg_options(parser)
    parser.add_argument(
        '--no-data-check', action='store_true',
        help='skip the quick data check (file pairing and counts, a sample of images and '
        'labels decoded); tools/analysis_tools/check_dataset.py --full checks everything')
    parser.add_argument(
        '--non-strict', action='store_true',
        help='load a checkpoint that does not match the model (missing, unexpected or '
        'mis-shaped keys are skipped with a warning, as mmengine does); by default such '
        'a checkpoint is an error')
    parser.add_argument('--launcher', choices=['none', 'pytorch', 'slurm', 'mpi'],
                        default='none', help='job launcher')
    # torchrun passes --local-rank (torch >= 2.0), older launchers --local_rank.
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    args = parser.parse_args()
    os.environ.setdefault('LOCAL_RANK', str(args.local_rank))
    return args


def _whole(text: str, low: int) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f'{text!r} is not a whole number') from None
    if value < low:
        raise argparse.ArgumentTypeError(f'{text} must be >= {low}')
    return value


def positive_int(text: str) -> int:
    """An argparse ``type``: a whole number >= 1 (a size, a batch, iterations)."""
    return _whole(text, 1)


def non_negative_int(text: str) -> int:
    """An argparse ``type``: a whole number >= 0 (warm-up runs, a count that may be 0)."""
    return _whole(text, 0)


def parse_arch(text: str) -> Union[str, dict]:
    """A ``--arch`` value: a zoo name (31B, 31L, XL, 3, 7, 13, 25) or a JSON arch dict."""
    if text.strip().startswith('{'):
        try:
            return json.loads(text)
        except json.JSONDecodeError as e:
            raise argparse.ArgumentTypeError(f'not a JSON arch dict: {e}') from None
    if text.upper() not in ARCH_ZOO:
        raise argparse.ArgumentTypeError(
            f'unknown arch {text!r}; one of {", ".join(ARCH_ZOO)} or a JSON dict')
    return text.upper()


def add_model_args(parser: argparse.ArgumentParser, arch_help: str,
                   many_archs: bool = False) -> None:
    """``[CONFIG] [--arch ARCH ...] [--cfg-options ...]``: a model from an mmseg /
    mmdet config (positional, as upstream) or a bare RepLKNet arch."""
    parser.add_argument('config', nargs='?', help='mmseg / mmdet config file')
    parser.add_argument('--arch', type=parse_arch, nargs='+' if many_archs else None,
                        help=f'{arch_help}: {", ".join(ARCH_ZOO)} or a JSON arch dict')
    add_cfg_options(parser)
