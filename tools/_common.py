"""What the tools share: the exit convention, config loading with ``--cfg-options``, the
host (mmseg or mmdet), runner building (distributed start-up: ``_dist``) and the checks
run before a runner is built.

Importing it switches :mod:`mmreplk.engine` on (every checkpoint mmengine reads goes
through mmreplk's safe loader; runner checkpoints load with ``weights_only``).

This is tool logic, not library: it lives beside the tools, which import it as
``_common``. Tools directly in ``tools/`` find it because Python puts a script's own
folder first on ``sys.path``; tools in sub-folders (``analysis_tools/``,
``model_converters/``) put ``tools/`` there themselves, first thing::

    sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))

Exit convention (docs/design.md, "Errors and exit statuses"): :func:`run` runs a tool's
``main``; a :class:`mmreplk.errors.MMReplkError` (a user mistake: missing data or
checkpoint, bad argument) becomes one line ``error: <message>`` on stderr and exit status
1; argparse's usage errors keep their status 2; anything else keeps its traceback
(unless it ended a distributed run because another rank stopped: then one line names
that rank, see ``_dist``).
"""
import argparse
import json
import os
import os.path as osp
import re
import sys
import tempfile
from typing import Callable, Iterator, Optional, Sequence, Tuple, Union

from _dist import (collective_timeout, init_cpu_distributed, lost_rank_error,
                   watch_ranks)
from _validate import (SECTIONS, check_cfg_options, check_config_keys, fit_schedule,
                       training_length)
from mmengine.config import Config, DictAction
from mmengine.model import BaseTTAModel, is_model_wrapper
from mmengine.runner import Runner

import mmreplk.engine  # noqa: F401  the switch: safe checkpoint loading for every tool
from mmreplk.errors import (CheckpointError, CheckpointNotFoundError, ConfigError,
                            DataNotFoundError, MMReplkError, WorkDirError)
from mmreplk.config_scope import PREFIX
from mmreplk.models.arch import ARCH_ZOO
from mmreplk.models.weights import load_matching
from mmreplk.utils import check_checkpoint_file, load_checkpoint_file

HOSTS = ('mmseg', 'mmdet')


# --------------------------------------------------------------------------- exit
def run(main: Callable[[], object]) -> None:
    """Run ``main()`` under the tools' exit convention (see the module docstring). In a
    distributed run, an error that other ranks caused by stopping is reported as
    theirs (``_dist.lost_rank_error``). ``--debug`` keeps every traceback."""
    try:
        main()
    except Exception as e:
        error = e if isinstance(e, MMReplkError) else lost_rank_error(e)
        if error is None or '--debug' in sys.argv[1:]:
            raise
        print(f'error: {error}', file=sys.stderr)
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


# --------------------------------------------------------------------------- configs
def load_config(path: str, cfg_options: Optional[dict] = None,
                checked: Sequence[str] = ('model', )) -> Config:
    """Load ``path`` (a file, or ``mmreplk::NAME``; its ``custom_imports`` are imported)
    and merge ``--cfg-options``: options that cannot take effect are warned about, a
    new training length rescales the schedule, and the keys and types of the ``checked``
    sections are checked (``_validate``)."""
    if not path.startswith(PREFIX) and not osp.isfile(path):
        raise ConfigError(f'config file not found: {path}')
    cfg = Config.fromfile(path)
    length = training_length(cfg)
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
        check_cfg_options(cfg, cfg_options)
    fit_schedule(cfg, length, cfg_options)
    if cfg.get('model') is not None and cfg.get('default_scope'):
        check_config_keys(cfg, sections=checked)
    return cfg


def load_run_config(path: str, cfg_options: Optional[dict], work_dir: Optional[str],
                    launcher: str) -> Config:
    """:func:`load_config` for a runner (train.py, test.py): an mmseg or mmdet config,
    its launcher and work dir set. The work dir is, in order: ``--work-dir``, the
    config's ``work_dir``, ``./work_dirs/<config name>`` (as mmseg and mmdet do)."""
    cfg = load_config(path, cfg_options, checked=SECTIONS)
    host_scope(cfg)
    cfg.launcher = launcher
    if work_dir is not None:
        cfg.work_dir = work_dir
    elif cfg.get('work_dir') is None:
        cfg.work_dir = osp.join('./work_dirs', osp.splitext(osp.basename(path))[0])
    return cfg


def host_scope(cfg: Config) -> str:
    """The config's ``default_scope``, which must be mmseg or mmdet."""
    scope = cfg.get('default_scope')
    if scope not in HOSTS:
        raise ConfigError(
            f"the config's default_scope is {scope!r}; these tools run "
            f"{' and '.join(HOSTS)} configs (inherit their default runtime)")
    return scope


def splits_of(cfg: Config, names: Sequence[str]) -> Tuple[str, ...]:
    """The dataloader splits among ``names`` the config actually uses."""
    return tuple(n for n in names
                 if cfg.get(f'{n}_dataloader') and cfg.get(f'{n}_cfg'))


# --------------------------------------------------------------------------- runner
def build_runner(cfg: Config, strict: bool = True) -> Runner:
    """Build the runner: ``Runner.from_cfg``, or the host's ``RUNNERS`` when the config
    names a ``runner_type``. mmdet also gets its dynamo cache limit set up, as its own
    tools do. A distributed run starts its process group (``_dist``: the collective
    timeout, CPU start-up) and this rank's heartbeat. With ``strict`` (the default;
    ``--non-strict`` turns it off) the checkpoint the runner loads (``load_from``,
    resume, the checkpoint of test.py) must match the model (:func:`load_strictly`)."""
    scope = host_scope(cfg)
    collective_timeout(cfg)  # checked before any process group starts
    init_cpu_distributed(cfg)
    if scope == 'mmdet':
        from mmdet.utils import setup_cache_size_limit_of_dynamo
        setup_cache_size_limit_of_dynamo()
    if 'runner_type' not in cfg:
        runner = Runner.from_cfg(cfg)
    else:
        if scope == 'mmseg':
            from mmseg.registry import RUNNERS
        else:
            from mmdet.registry import RUNNERS
        runner = RUNNERS.build(cfg)
    watch_ranks(cfg)
    if strict:
        load_strictly(runner, cfg.filename)
    return runner


def load_strictly(runner: Runner, config: str) -> None:
    """Make ``runner.load_checkpoint`` (``load_from``, resume) refuse a checkpoint that
    does not match the model: one :class:`CheckpointError` naming the missing,
    unexpected and mis-shaped keys and the RepLKNet arch the file looks like, instead
    of mmengine's warning and a model left half initialized."""
    def load_checkpoint(filename: str, map_location='cpu', strict: bool = False,
                        revise_keys: list = [(r'^module.', '')]) -> dict:
        checkpoint = load_checkpoint_file(filename, map_location)
        runner.call_hook('after_load_checkpoint', checkpoint=checkpoint)
        model = runner.model.module if is_model_wrapper(runner.model) else runner.model
        if isinstance(model, BaseTTAModel):
            model = model.module
        state = checkpoint.get('state_dict', checkpoint)
        for pattern, replacement in revise_keys:
            state = {re.sub(pattern, replacement, k): v for k, v in state.items()}
        load_matching(model, state, f'checkpoint {filename} does not match the model of '
                      f'{config}', hint=' (--non-strict loads what matches)')
        runner._has_loaded = True
        runner.logger.info(f'Load checkpoint from {filename} (strict)')
        return checkpoint

    runner.load_checkpoint = load_checkpoint


# --------------------------------------------------------------------------- checks
# Run by train.py / test.py before the runner is built, so that a missing data set or
# checkpoint is reported in one line that says what to do (config keys: _validate).
_DATA_HINTS = {
    'ADE20KDataset':
    'download ADEChallengeData2016.zip from http://data.csail.mit.edu/places/'
    'ADEchallenge/ADEChallengeData2016.zip and unzip it into data/ade/ (so '
    'that data/ade/ADEChallengeData2016/images/training exists)',
    'CityscapesDataset':
    'download leftImg8bit_trainvaltest.zip and gtFine_trainvaltest.zip from '
    'https://www.cityscapes-dataset.com/downloads/, unzip both into '
    'data/cityscapes/ and run mmsegmentation\'s '
    'tools/dataset_converters/cityscapes.py data/cityscapes to write the '
    '*_labelTrainIds.png maps',
    'CocoDataset':
    'download train2017.zip, val2017.zip and annotations_trainval2017.zip '
    'from https://cocodataset.org/#download and unzip them into data/coco/ '
    '(data/coco/train2017, data/coco/val2017, data/coco/annotations)',
}


def dataset_cfgs(cfg: Config) -> Iterator[Tuple[str, dict]]:
    """``(split, dataset config)`` of each dataloader, wrappers (RepeatDataset, ...)
    unwrapped."""
    for split in ('train', 'val', 'test'):
        loader = cfg.get(f'{split}_dataloader')
        if not loader:
            continue
        dataset = loader['dataset']
        while 'dataset' in dataset:  # RepeatDataset, ClassBalancedDataset
            dataset = dataset['dataset']
        yield split, dataset


def _missing(root: Optional[str], path: Optional[str]) -> Optional[str]:
    if not path:
        return None
    full = path if root is None or osp.isabs(path) else osp.join(root, path)
    return None if osp.exists(full) else full


def check_data(cfg: Config, splits: Tuple[str, ...]) -> None:
    """Raise :class:`DataNotFoundError` naming the missing data and how to get it.

    Args:
        cfg: the full config.
        splits: the dataloaders the run will use, e.g. ``('train', 'val')``.
    """
    for split, dataset in dataset_cfgs(cfg):
        if split not in splits:
            continue
        root = dataset.get('data_root')
        paths = list(dataset.get('data_prefix', {}).values())
        paths.append(dataset.get('ann_file'))
        missing = _missing(None, root) or next(
            (m for p in paths if (m := _missing(root, p))), None)
        if missing:
            hint = _DATA_HINTS.get(
                dataset.get('type'), 'point the config at your data set')
            raise DataNotFoundError(
                f'{split} data set not found: {missing} does not exist. '
                f'To get it, {hint}; or set the data root with --cfg-options '
                f'{split}_dataloader.dataset.data_root=PATH.')
    for split in splits:
        evaluator = cfg.get(f'{split}_evaluator') or {}
        ann = evaluator.get('ann_file') if isinstance(evaluator, dict) else None
        if ann and not osp.exists(ann):
            raise DataNotFoundError(
                f'{split}_evaluator.ann_file not found: {ann}. To get it, '
                f'{_DATA_HINTS["CocoDataset"]}; or set it with --cfg-options '
                f'{split}_evaluator.ann_file=PATH.')


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


def _is_local(path: Optional[str]) -> bool:
    return bool(path) and '://' not in path


def check_checkpoint(path: Optional[str], what: str) -> None:
    """Raise :class:`CheckpointError` (or its ``NotFound`` kind) if a local checkpoint
    is missing, empty or not a torch file, before anything is built."""
    if not _is_local(path):
        return
    if not osp.exists(path):
        raise CheckpointNotFoundError(f'{what} not found: {path}.')
    try:
        check_checkpoint_file(path)
    except CheckpointError as e:
        raise CheckpointError(f'{e} (the {what})') from None


def check_pretrained(cfg: Config) -> None:
    """Check the local checkpoints of the backbone's ``Pretrained`` ``init_cfg``."""
    init_cfg = cfg.model.get('backbone', {}).get('init_cfg') or []
    for entry in init_cfg if isinstance(init_cfg, list) else [init_cfg]:
        path = entry.get('checkpoint') if entry.get('type') == 'Pretrained' else None
        if _is_local(path) and osp.isfile(path):
            check_checkpoint(path, 'ImageNet weights for the backbone')
        elif _is_local(path):
            raise CheckpointNotFoundError(
                f'ImageNet weights for the backbone not found: {path}. Download '
                'the official RepLKNet checkpoint named in docs/configs.md and convert '
                'it with `python tools/model_converters/convert_checkpoint.py SRC '
                f'{path}`, or train from scratch with --cfg-options '
                'model.backbone.init_cfg=None.')
