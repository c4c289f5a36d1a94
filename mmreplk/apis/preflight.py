"""Checks run before a runner is built, so that a missing data set or a missing or broken
checkpoint is one line that says what to do."""
import os.path as osp
from typing import Iterator, Optional, Tuple

from mmengine.config import Config

from mmreplk.errors import CheckpointError, CheckpointNotFoundError, DataNotFoundError
from mmreplk.utils import check_checkpoint_file

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
