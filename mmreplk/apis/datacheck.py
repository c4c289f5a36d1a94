"""The data check: what would otherwise stop training hours in (a missing or unreadable
file, a label beyond the classes) or silently bend it (pairs the loader misaligns, boxes
the data set drops, validation labels the metric drops), found before the runner starts.

One mechanism: each sample the check looks at is decoded by the loading transforms of
its split's own pipeline (``LoadImageFromFile``, ``LoadAnnotations``, ... with the
config's arguments), from the data info the data set itself produces (its
``reduce_zero_label``, class subset label map, COCO category mapping), so the check sees
what training sees, EXIF orientation included. Then:

* segmentation (mmseg data sets): every image has its label map and every label map its
  image; the split is not empty; each label map is one channel, of its image's size, in
  the image's orientation, with values below the classes of both the data set and the
  model's heads (``num_classes``) or the ignore index;
* COCO (mmdet): the annotation file is JSON with the fields mmdet reads, of the right
  types (:data:`COCO_FIELDS`), ids unique; every listed image exists and decodes at its
  listed size; boxes have no negative size and lie inside their image (zero-size ones,
  which the data set skips, are counted in the summary); category ids are declared and
  their classes below the model's heads' ``num_classes``.

A loader that raises on a sample (a truncated, empty or unreadable file) is a problem
of that file, reported with the loader's message. The quick check (train.py and test.py
run it unless ``--no-data-check``) pairs and counts all files but decodes a bounded
sample, and says how many; the full one (``tools/analysis_tools/check_dataset.py
--full``) decodes everything with a progress bar. Problems come back as one
:class:`DataError` with one line per kind, its count and the first paths.
"""
import contextlib
import copy
import io
import json
import math
import os
import os.path as osp
import time
from collections import Counter, defaultdict
from typing import Any, Callable, Dict, Iterator, List, Optional, Sequence, Tuple

import numpy as np
from mmengine.config import Config
from mmengine.utils import ProgressBar
from PIL import Image

from mmreplk.errors import DataError

from .preflight import dataset_cfgs

Problems = Dict[str, List[str]]
Loader = Callable[[dict], Optional[dict]]
SAMPLE = 20  # files decoded per split by the quick check
EXIF_ORIENTATION = 0x0112  # the EXIF tag; 1 = as stored, 2..8 = flipped and/or turned
TURNING_FLAGS = ('color', 'grayscale')  # mmcv's decode flags that apply the orientation
TURNING_BACKENDS = ('cv2', 'pillow')  # the mmcv decoders that apply it
ENTRY_NAMES = {'images': 'image', 'annotations': 'annotation', 'categories': 'category'}


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    try:
        return math.isfinite(float(value))
    except OverflowError:  # an integer of hundreds of digits
        return False


def _is_box(value: Any) -> bool:
    return (isinstance(value, list) and len(value) == 4 and all(map(_is_number, value))
            and value[2] >= 0 and value[3] >= 0)


#: What mmdet's COCO loading reads from each entry of the annotation file: section ->
#: field -> (test, what the value must be). Boxes of zero size are valid (COCO's own
#: train2017 has some; the data set skips them, the summary counts them).
COCO_FIELDS: Dict[str, Dict[str, Tuple[Callable[[Any], bool], str]]] = {
    'images': {
        'id': (_is_int, 'an integer'),
        'file_name': (lambda v: isinstance(v, str) and bool(v), 'a file name'),
        'width': (lambda v: _is_int(v) and v > 0, 'a positive integer'),
        'height': (lambda v: _is_int(v) and v > 0, 'a positive integer'),
    },
    'annotations': {
        'id': (_is_int, 'an integer'),
        'image_id': (_is_int, 'an integer'),
        'category_id': (_is_int, 'an integer'),
        'bbox': (_is_box, '[x, y, width, height]: 4 finite numbers, width and height >= 0'),
        'area': (lambda v: _is_number(v) and v >= 0, 'a number >= 0'),
    },
    'categories': {
        'id': (_is_int, 'an integer'),
        'name': (lambda v: isinstance(v, str), 'a string'),
    },
}


def _why(error: BaseException) -> str:
    """``Type: first line of the message`` (at most 400 characters: paths stay whole)."""
    lines = str(error).strip().splitlines()
    return f'{type(error).__name__}: {lines[0][:400] if lines else ""}'.rstrip(': ')


def _sample(items: Sequence, full: bool) -> Sequence:
    if full or len(items) <= SAMPLE:
        return items
    step = len(items) / SAMPLE
    return [items[int(i * step)] for i in range(SAMPLE)]


def _progress(items: Sequence, show: bool) -> Iterator:
    bar = ProgressBar(len(items)) if show and items else None
    for item in items:
        yield item
        if bar:
            bar.update()
    if bar:
        print()


def _build_dataset(dataset: dict, scope: str) -> Any:
    """The split's data set, built as the runner builds it but without loading its
    data list and with an empty pipeline."""
    from mmengine.registry import DATASETS
    with DATASETS.switch_scope_and_registry(scope) as registry:
        return registry.build(dict(dataset, lazy_init=True, pipeline=[]))


def _loaders(dataset: dict, scope: str, problems: Problems) -> List[Loader]:
    """The loading transforms (type ``Load*``) of the split's pipeline, built with the
    config's arguments; one that cannot be built is a problem (the runner would stop
    on it)."""
    from mmengine.registry import TRANSFORMS
    loaders = []
    for step in dataset.get('pipeline') or []:
        kind = step.get('type') if isinstance(step, dict) else None
        if not getattr(kind, '__name__', str(kind)).split('.')[-1].startswith('Load'):
            continue
        try:
            with TRANSFORMS.switch_scope_and_registry(scope) as registry:
                loaders.append(registry.build(step))
        except Exception as e:  # a wrong argument, an unknown type: the runner stops too
            problems['loading transforms of the pipeline that cannot be built'].append(
                f'{step} ({_why(e)})')
    return loaders


def _load(loaders: Sequence[Loader], info: dict, problems: Problems,
          label_key: str = '') -> Optional[dict]:
    """``info`` run through ``loaders`` as the pipeline runs it, or None after adding
    why a loader failed (it would fail, or skip the sample, in training too)."""
    results = copy.deepcopy(info)
    for loader in loaders:
        name = type(loader).__name__
        path = info.get(label_key) if label_key and 'Annotation' in name else None
        path = path or info.get('img_path')
        try:
            results = loader(results)
        except Exception as e:  # whatever a loader raises on a file, training raises
            problems[f'files {name} fails on'].append(f'{path} ({_why(e)})')
            return None
        if results is None:  # ignore_empty: training would skip the sample
            problems[f'files {name} skips (ignore_empty)'].append(str(path))
            return None
    return results


def _num_classes(node: Any, path: str = 'model') -> Iterator[Tuple[str, int]]:
    """``(key path, value)`` of every ``num_classes`` in the model config (the
    class-agnostic ``rpn_head`` left out)."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key == 'num_classes' and _is_int(value):
                yield f'{path}.num_classes', value
            elif key != 'rpn_head':
                yield from _num_classes(value, f'{path}.{key}')
    elif isinstance(node, (list, tuple)):
        for i, value in enumerate(node):
            yield from _num_classes(value, f'{path}.{i}')


def _class_limit(cfg: Config, classes: int) -> Tuple[int, str]:
    """The number of classes labels must stay below (the data set's or a head's, the
    fewer), and what sets it."""
    limit, what = classes, f"the data set's {classes} classes"
    for path, value in _num_classes(cfg.get('model')):
        if value < limit:
            limit, what = value, f'{path} = {value}'
    return limit, what


def _orientation(path: str) -> int:
    """The EXIF orientation of an image file (1 when it has none or PIL cannot read
    its header: then the pipeline's decoder alone decides)."""
    try:
        with Image.open(path) as image:
            value = image.getexif().get(EXIF_ORIENTATION, 1)
    except (OSError, ValueError, SyntaxError, TypeError):
        return 1
    return value if _is_int(value) and 2 <= value <= 8 else 1


def _seg_problems(cfg: Config, dataset: dict, scope: str, full: bool, show: bool
                  ) -> Tuple[Problems, int, int, List[str]]:
    problems: Problems = defaultdict(list)
    built = _build_dataset(dataset, scope)
    img_dir = built.data_prefix.get('img_path', '')
    ann_dir = built.data_prefix.get('seg_map_path')
    try:
        infos = built.load_data_list()
    except (OSError, RecursionError) as e:  # a symlink loop, a folder without access
        problems['unreadable data folders'].append(f'{img_dir} ({_why(e)})')
        return problems, 0, 0, []
    if not infos:
        problems['empty split: no image'].append(f'{img_dir} (*{built.img_suffix})')
        return problems, 0, 0, []
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
    loaders = _loaders(dataset, scope, problems)
    turning = any(getattr(loader, 'color_type', None) in TURNING_FLAGS
                  and getattr(loader, 'imdecode_backend', None) in TURNING_BACKENDS
                  for loader in loaders)
    limit, what = _class_limit(cfg, len(built.metainfo.get('classes', ())))
    ignore = built.ignore_index
    paired = [i for i in infos if not ann_dir or osp.isfile(i['seg_map_path'])]
    checked = _sample(paired, full)
    for info in _progress(checked, show):
        results = _load(loaders, info, problems, 'seg_map_path')
        if results is None or results.get('gt_seg_map') is None:
            continue
        label, path, image = results['gt_seg_map'], info['seg_map_path'], results.get('img')
        if label.ndim != 2:
            problems['label maps with more than one channel'].append(
                f'{path} ({"x".join(map(str, label.shape))})')
            continue
        turned = _orientation(info['img_path']) if image is not None and turning else 1
        if image is not None and image.shape[:2] != label.shape:
            problems['label and image sizes differ (as the pipeline decodes them)'].append(
                f'{path} {label.shape[1]}x{label.shape[0]} vs image '
                f'{image.shape[1]}x{image.shape[0]}')
        elif turned != 1:
            problems['images the loader turns by their EXIF orientation, their label '
                     'maps not'].append(f'{info["img_path"]} (orientation {turned})')
        values = np.unique(label)
        bad = values[(values != ignore) & (values >= limit)]
        if bad.size:
            problems[f'label maps with values beyond {what} (ignore index '
                     f'{ignore})'].append(f'{path} ({bad[:5].tolist()})')
    return problems, len(infos), len(checked), []


def _coco_entries(coco: Any, ann_file: str, problems: Problems) -> bool:
    """Add each entry whose fields mmdet cannot read (:data:`COCO_FIELDS`) and each
    duplicate id; True when there is none."""
    if not isinstance(coco, dict):
        problems['annotation files that are not a JSON object'].append(ann_file)
        return False
    clean = True
    for section, fields in COCO_FIELDS.items():
        entries, entry_name = coco.get(section), ENTRY_NAMES[section]
        if not isinstance(entries, list):
            problems[f'annotation files without a list of "{section}"'].append(ann_file)
            clean = False
            continue
        ids: Counter = Counter()
        for i, entry in enumerate(entries):
            if not isinstance(entry, dict):
                problems[f'{section} entries that are not objects in {ann_file}'].append(
                    f'entry {i} ({entry!r:.40})')
                clean = False
                continue
            where = (f'{entry_name} {entry["id"]!r:.40}' if 'id' in entry else
                     f'{entry_name} at index {i}')
            for field, (test, what) in fields.items():
                if not test(entry.get(field)):
                    got = repr(entry[field])[:40] if field in entry else 'missing'
                    problems[f'{section} with a bad "{field}" (must be {what}) in '
                             f'{ann_file}'].append(f'{where} ({got})')
                    clean = False
            if _is_int(entry.get('id')):
                ids[entry['id']] += 1
        for value, count in ids.items():
            if count > 1:
                problems[f'duplicate {entry_name} ids in {ann_file}'].append(
                    f'{value} ({count} times)')
                clean = False
    return clean


def _coco_problems(cfg: Config, dataset: dict, scope: str, full: bool, show: bool
                   ) -> Tuple[Problems, int, int, List[str]]:
    problems: Problems = defaultdict(list)
    built = _build_dataset(dataset, scope)
    ann_file, img_dir = built.ann_file, built.data_prefix.get('img', '')
    try:
        with open(ann_file, 'rb') as f:
            coco = json.load(f)
    except (OSError, ValueError, RecursionError) as e:
        problems['unreadable annotation file'].append(f'{ann_file} ({_why(e)})')
        return problems, 0, 0, []
    if not _coco_entries(coco, ann_file, problems):
        return problems, 0, 0, []
    images = {im['id']: im for im in coco['images']}
    categories = {c['id']: c['name'] for c in coco['categories']}
    if not images:
        problems['empty split: no image'].append(ann_file)
    for im in images.values():
        if not osp.isfile(osp.join(img_dir, im['file_name'])):
            problems['listed images missing'].append(osp.join(img_dir, im['file_name']))
    for ann in coco['annotations']:
        im = images.get(ann['image_id'])
        where = f'annotation {ann["id"]} of image {ann["image_id"]}'
        if ann['category_id'] not in categories:
            problems[f'unknown category ids in {ann_file}'].append(
                f'{where} ({ann["category_id"]})')
        if im is None:
            problems[f'annotations of unlisted images in {ann_file}'].append(where)
            continue
        x, y, w, h = ann['bbox']
        if x < 0 or y < 0 or x + w > im['width'] + 1 or y + h > im['height'] + 1:
            problems[f'boxes outside their image in {ann_file}'].append(
                f'{where} ({x}, {y}, {w}, {h} in {im["width"]}x{im["height"]})')
    used = Counter(categories.get(ann['category_id']) for ann in coco['annotations']
                   if not ann.get('ignore', False))
    del coco
    if problems:
        return problems, len(images), 0, []
    try:  # the data set's own parsing: its category mapping, what it skips
        with contextlib.redirect_stdout(io.StringIO()):  # pycocotools' progress lines
            infos = built.load_data_list()
    except Exception as e:  # whatever mmdet raises on this file, the runner raises
        problems['annotation files the data set cannot load'].append(
            f'{ann_file} ({_why(e)})')
        return problems, len(images), 0, []
    classes = built.metainfo.get('classes', ())
    limit, what = _class_limit(cfg, len(classes))
    for info in infos:
        for instance in info.get('instances', []):
            if instance['bbox_label'] >= limit:
                problems[f'annotations of classes beyond {what}'].append(
                    f'{info["img_path"]} (class {instance["bbox_label"]} '
                    f'{classes[instance["bbox_label"]]!r})')
    loaders = _loaders(dataset, scope, problems)
    checked = _sample(infos, full)
    for info in _progress(checked, show):
        results = _load(loaders, info, problems)
        image = None if results is None else results.get('img')
        if image is not None and image.shape[:2] != (info['height'], info['width']):
            problems['image sizes differ from the annotation file (as the pipeline '
                     'decodes them)'].append(f'{info["img_path"]} {image.shape[1]}x'
                                             f'{image.shape[0]} vs {info["width"]}x'
                                             f'{info["height"]}')
    kept = sum(len(info.get('instances', [])) for info in infos)
    of_classes = sum(n for name, n in used.items() if name in classes)
    notes = [f'{n} {what}' for n, what in (
        (of_classes - kept, 'boxes the data set skips (under 1 pixel or of area 0)'),
        (sum(used.values()) - of_classes, 'annotations of categories outside the '
         "data set's classes, left out")) if n]
    return problems, len(images), len(checked), notes


def check_data_sets(cfg: Config, splits: Sequence[str], full: bool = False,
                    progress: bool = False) -> str:
    """Check the data sets of ``splits``; raise :class:`DataError` with one line per kind
    of problem (count and first paths), else return a one-line summary (files, how many
    were decoded, what the data set leaves out, seconds)."""
    start, lines, summary = time.time(), [], []
    scope = cfg.get('default_scope')
    for split, dataset in dataset_cfgs(cfg):
        if split not in splits:
            continue
        check = _coco_problems if 'Coco' in str(dataset.get('type')) else _seg_problems
        problems, files, decoded, notes = check(cfg, dataset, scope, full, progress)
        said = '; '.join([f'{decoded} decoded'] + notes)
        summary.append(f'{split} {files} images ({said})')
        for kind, items in problems.items():
            more = f', ... (+{len(items) - 3})' if len(items) > 3 else ''
            lines.append(f'{split}: {len(items)} {kind}: {"; ".join(items[:3])}{more}')
    if lines:
        raise DataError('the data check found problems (--no-data-check skips it):\n  '
                        + '\n  '.join(lines))
    return (f'data check ({"full" if full else "quick"}): {", ".join(summary)}, no '
            f'problem, {time.time() - start:.1f} s')


__all__ = ['check_data_sets']
