"""Checks run by ``tools/train.py`` / ``tools/test.py`` before the runner is
built, so that a missing data set or checkpoint, or a misspelt backbone
argument, is reported in one line that says what to do."""
import inspect
import os.path as osp
from typing import Iterator, Optional, Tuple

from mmengine.config import Config
from mmengine.registry import MODELS, DefaultScope

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


def _datasets(cfg: Config) -> Iterator[Tuple[str, dict]]:
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
    """Raise FileNotFoundError naming the missing data and how to get it.

    Args:
        cfg: the full config.
        splits: the dataloaders the run will use, e.g. ``('train', 'val')``.
    """
    for split, dataset in _datasets(cfg):
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
            raise FileNotFoundError(
                f'{split} data set not found: {missing} does not exist. '
                f'To get it, {hint}; or set the data root with --cfg-options '
                f'{split}_dataloader.dataset.data_root=PATH.')
    for split in splits:
        evaluator = cfg.get(f'{split}_evaluator') or {}
        ann = evaluator.get('ann_file') if isinstance(evaluator,
                                                      dict) else None
        if ann and not osp.exists(ann):
            raise FileNotFoundError(
                f'{split}_evaluator.ann_file not found: {ann}. To get it, '
                f'{_DATA_HINTS["CocoDataset"]}; or set it with --cfg-options '
                f'{split}_evaluator.ann_file=PATH.')


def _is_url(path: str) -> bool:
    return '://' in path


def check_checkpoint(path: Optional[str], what: str) -> None:
    """Raise FileNotFoundError if a local checkpoint ``path`` is missing."""
    if path and not _is_url(path) and not osp.isfile(path):
        raise FileNotFoundError(f'{what} not found: {path}.')


def check_pretrained(cfg: Config) -> None:
    """Check the backbone's ``init_cfg`` checkpoint (local paths only)."""
    init_cfg = cfg.model.get('backbone', {}).get('init_cfg') or {}
    path = init_cfg.get('checkpoint') if isinstance(init_cfg, dict) else None
    if path and not _is_url(path) and not osp.isfile(path):
        raise FileNotFoundError(
            f'ImageNet weights for the backbone not found: {path}. Download '
            'the official RepLKNet checkpoint named in docs/configs.md and '
            f'convert it with `python tools/convert_checkpoint.py SRC {path}`'
            ', or train from scratch with --cfg-options '
            'model.backbone.init_cfg=None.')


def check_backbone_args(cfg: Config) -> None:
    """Raise TypeError if ``model.backbone`` has an argument its class lacks."""
    backbone = dict(cfg.model.get('backbone') or {})
    type_name = backbone.pop('type', None)
    if not isinstance(type_name, str):
        return
    with DefaultScope.overwrite_default_scope(cfg.get('default_scope')):
        cls = MODELS.get(type_name)
    if cls is None:
        raise TypeError(f'model.backbone: unknown type {type_name!r} (is '
                        "custom_imports=dict(imports=['mmreplk']) set?)")
    try:
        inspect.signature(cls).bind(**backbone)
    except TypeError as e:
        params = ', '.join(p for p in inspect.signature(cls).parameters)
        raise TypeError(f'model.backbone ({type_name}): {e}. Accepted '
                        f'arguments: {params}.') from None
