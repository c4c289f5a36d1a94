"""The data check: what would otherwise stop training hours in (a missing or unreadable
file, a label beyond the classes) or silently bend the metric (validation labels that the
evaluation drops), found before the runner starts.

Segmentation (mmseg datasets): every image has its label map and every label map its
image; images and labels decode; label values are classes or the ignore index (after
``reduce_zero_label`` and a class subset's label map); image and label sizes agree; the split is not empty. COCO
(mmdet): the annotation file is JSON; every listed image exists; boxes lie inside their
image; category ids are known.

The quick check (train.py and test.py run it unless ``--no-data-check``) pairs and
counts all files but decodes a bounded sample; the full one
(``tools/analysis_tools/check_dataset.py --full``) decodes everything with a progress
bar. Problems come back as one line per kind, with the count and the first paths.
"""
import json
import os
import os.path as osp
import time
from collections import defaultdict
from typing import Dict, Iterator, List, Optional, Sequence, Tuple

import numpy as np
from mmengine.config import Config
from mmengine.utils import ProgressBar
from PIL import Image

from mmreplk.errors import DataError

from .preflight import dataset_cfgs

Problems = Dict[str, List[str]]
SAMPLE = 20  # files decoded per split by the quick check


def _sample(items: Sequence, full: bool) -> Sequence:
    if full or len(items) <= SAMPLE:
        return items
    step = len(items) / SAMPLE
    return [items[int(i * step)] for i in range(SAMPLE)]


def _decode(path: str) -> Tuple[Optional[Image.Image], Optional[str]]:
    """The decoded image, or why it is not one."""
    try:
        image = Image.open(path)
        image.load()
        return image, None
    except Exception as e:  # PIL raises many kinds for broken files
        return None, f'{type(e).__name__}: {e}'


def _progress(items: Sequence, show: bool) -> Iterator:
    bar = ProgressBar(len(items)) if show and items else None
    for item in items:
        yield item
        if bar:
            bar.update()
    if bar:
        print()


def _seg_problems(dataset: dict, scope: str, full: bool, show: bool
                  ) -> Tuple[Problems, int, int]:
    from mmengine.registry import DATASETS
    with DATASETS.switch_scope_and_registry(scope) as registry:
        built = registry.build(dict(dataset, lazy_init=True, pipeline=[]))
    problems: Problems = defaultdict(list)
    img_dir = built.data_prefix.get('img_path', '')
    ann_dir = built.data_prefix.get('seg_map_path')
    infos = built.load_data_list()
    if not infos:
        problems['empty split: no image'].append(
            f'{img_dir} (*{built.img_suffix})')
        return problems, 0, 0
    if ann_dir:
        have = {i['seg_map_path'] for i in infos}
        for info in infos:
            if not osp.isfile(info['seg_map_path']):
                problems['images without a label map'].append(info['img_path'])
        for root, _, names in os.walk(ann_dir):
            for name in sorted(names):
                path = osp.join(root, name)
                if name.endswith(built.seg_map_suffix) and path not in have:
                    problems['label maps without an image'].append(path)
    classes = len(built.metainfo.get('classes', ()))
    ignore = built.ignore_index
    paired = [i for i in infos if not ann_dir or osp.isfile(i['seg_map_path'])]
    checked = _sample(paired, full)
    for info in _progress(checked, show):
        image, why = _decode(info['img_path'])
        if why:
            problems['unreadable images'].append(f'{info["img_path"]} ({why})')
        if not ann_dir:
            continue
        label, why = _decode(info['seg_map_path'])
        if why:
            problems['unreadable label maps'].append(f'{info["seg_map_path"]} ({why})')
            continue
        if image is not None and image.size != label.size:
            problems['label and image sizes differ'].append(
                f'{info["seg_map_path"]} {label.size[0]}x{label.size[1]} vs image '
                f'{image.size[0]}x{image.size[1]}')
        values = np.unique(np.asarray(label))
        if built.reduce_zero_label:  # then the class subset's label map, as mmseg loads
            values = np.where(values == 0, ignore, values - 1)
        values = [(built.label_map or {}).get(int(v), int(v)) for v in values]
        bad = sorted(int(v) for v in values if v != ignore and not 0 <= v < classes)
        if bad:
            problems[f'label maps with values beyond the {classes} classes (ignore index '
                     f'{ignore})'].append(f'{info["seg_map_path"]} ({bad[:5]})')
    return problems, len(infos), len(checked)


def _coco_problems(dataset: dict, full: bool, show: bool) -> Tuple[Problems, int, int]:
    problems: Problems = defaultdict(list)
    root = dataset.get('data_root') or ''
    ann_file = osp.join(root, dataset.get('ann_file', ''))
    img_dir = osp.join(root, (dataset.get('data_prefix') or {}).get('img', ''))
    try:
        with open(ann_file) as f:
            coco = json.load(f)
        images = {im['id']: im for im in coco['images']}
        categories = {c['id'] for c in coco.get('categories', [])}
        annotations = coco.get('annotations', [])
    except (OSError, ValueError, KeyError, TypeError) as e:
        problems['unreadable annotation file'].append(f'{ann_file} ({type(e).__name__}: '
                                                      f'{e})')
        return problems, 0, 0
    if not images:
        problems['empty split: no image'].append(ann_file)
    for im in images.values():
        if not osp.isfile(osp.join(img_dir, im['file_name'])):
            problems['listed images missing'].append(osp.join(img_dir, im['file_name']))
    for ann in annotations:
        im = images.get(ann.get('image_id'))
        where = f'annotation {ann.get("id")} of image {ann.get("image_id")}'
        if ann.get('category_id') not in categories:
            problems['unknown category ids'].append(f'{where} ({ann.get("category_id")})')
        if im is None:
            problems['annotations of unlisted images'].append(where)
            continue
        x, y, w, h = ann.get('bbox', (0, 0, 0, 0))
        if x < 0 or y < 0 or x + w > im['width'] + 1 or y + h > im['height'] + 1:
            problems['boxes outside their image'].append(
                f'{where} ({x}, {y}, {w}, {h} in {im["width"]}x{im["height"]})')
    present = [im for im in images.values()
               if osp.isfile(osp.join(img_dir, im['file_name']))]
    checked = _sample(present, full)
    for im in _progress(checked, show):
        path = osp.join(img_dir, im['file_name'])
        image, why = _decode(path)
        if why:
            problems['unreadable images'].append(f'{path} ({why})')
        elif image.size != (im['width'], im['height']):
            problems['image sizes differ from the annotation file'].append(
                f'{path} {image.size[0]}x{image.size[1]} vs {im["width"]}x{im["height"]}')
    return problems, len(images), len(checked)


def check_data_sets(cfg: Config, splits: Sequence[str], full: bool = False,
                    progress: bool = False) -> str:
    """Check the data sets of ``splits``; raise :class:`DataError` with one line per kind
    of problem (count and first paths), else return a one-line summary (files, how many
    were decoded, seconds)."""
    start, lines, summary = time.time(), [], []
    scope = cfg.get('default_scope')
    for split, dataset in dataset_cfgs(cfg):
        if split not in splits:
            continue
        if 'Coco' in str(dataset.get('type')):
            problems, files, decoded = _coco_problems(dataset, full, progress)
        else:
            problems, files, decoded = _seg_problems(dataset, scope, full, progress)
        summary.append(f'{split} {files} images ({decoded} decoded)')
        for kind, items in problems.items():
            more = f', ... (+{len(items) - 3})' if len(items) > 3 else ''
            lines.append(f'{split}: {len(items)} {kind}: {"; ".join(items[:3])}{more}')
    if lines:
        raise DataError('the data check found problems (--no-data-check skips it):\n  '
                        + '\n  '.join(lines))
    return (f'data check ({"full" if full else "quick"}): {", ".join(summary)}, no '
            f'problem, {time.time() - start:.1f} s')


__all__ = ['check_data_sets']
