"""The data check's guarantee over generated cases, corrupted files x data set formats
(ADE20K, Cityscapes, COCO): each broken data set ends in one DataError whose line names
the problem and the file, no other exception ever escapes, a good data set passes, and
whatever the check passes the data set loads through its whole training pipeline (the
check decodes as the pipeline does)."""
import copy
import functools
import json
import math
import os
import os.path as osp
import re
import shutil
import tempfile
from glob import glob

import numpy as np
import pytest
from conftest import loader_options
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from mmengine.config import Config

from mmreplk.apis import datacheck
from mmreplk.errors import DataError
from mmreplk.testing.synthetic import (CORRUPTIONS, make_ade20k, make_cityscapes,
                                       make_coco)

#: format -> (config, writer, image glob per split, (image, label) name replacements)
SEG = {
    'ade20k': ('configs/upernet_replk31b_ade20k.py', make_ade20k,
               {'train': 'images/training/*.jpg', 'val': 'images/validation/*.jpg'},
               (('images', 'annotations'), ('.jpg', '.png'))),
    'cityscapes': ('configs/upernet_replk31b_cityscapes.py', make_cityscapes,
                   {'train': 'leftImg8bit/train/*/*.png', 'val': 'leftImg8bit/val/*/*.png'},
                   (('leftImg8bit', 'gtFine'),
                    ('_gtFine.png', '_gtFine_labelTrainIds.png')))}
CLASSES = {'ade20k': 150, 'cityscapes': 19}
COCO = 'configs/fcos_replk31b_coco.py'
JSON = 'annotations/instances_train2017.json'
SETTINGS = settings(max_examples=16, deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.function_scoped_fixture])


@functools.lru_cache()
def _config(path: str) -> Config:
    return Config.fromfile(path)


def _cfg(path: str, root: str, **options) -> Config:
    cfg = copy.deepcopy(_config(path))
    cfg.merge_from_dict(dict(loader_options(root), **options))
    return cfg


@pytest.fixture(scope='module')
def template(tmp_path_factory):
    """``template(name)``: a good data set of each format, written once per module."""
    roots = {}

    def get(name: str) -> str:
        if name not in roots:
            root = str(tmp_path_factory.mktemp(name))
            if name == 'coco':
                from mmdet.datasets import CocoDataset
                roots[name] = make_coco(root, CocoDataset.METAINFO['classes'], 4, 2, 128)
            else:
                roots[name] = SEG[name][1](root, 4, 2, 64)
        return roots[name]
    return get


def _copy(template, name: str, into: str) -> str:
    return shutil.copytree(template(name), osp.join(into, name), symlinks=True)


def _pair(fmt: str, root: str, split: str, index: int):
    image = sorted(glob(osp.join(root, SEG[fmt][2][split])))[index]
    label = image.replace('_leftImg8bit.png', '_gtFine.png')
    for old, new in SEG[fmt][3]:
        label = label.replace(old, new)
    return image, label


def _lines(cfg: Config, splits) -> list:
    """The problem lines of the DataError the check must raise."""
    with pytest.raises(DataError) as info:
        datacheck.check_data_sets(cfg, splits, full=True)
    head, *lines = str(info.value).splitlines()
    assert head == 'the data check found problems (--no-data-check skips it):'
    return [line.strip() for line in lines]


@pytest.mark.parametrize('fmt', [*SEG, 'coco'])
def test_a_good_data_set_passes(fmt, template):
    cfg = _cfg(SEG[fmt][0] if fmt in SEG else COCO, template(fmt))
    assert datacheck.check_data_sets(cfg, ['train', 'val']).startswith(
        'data check (quick): train 4 images (4 decoded), val 2 images (2 decoded), no '
        'problem')


# --------------------------------------------------------------------------- segmentation
#: (file, corruption, the problem's line, the file the line names)
SEG_CASES = [
    ('image', 'truncated', 'files LoadImageFromFile fails on', 'image'),
    ('image', 'empty', 'files LoadImageFromFile fails on', 'image'),
    ('image', 'not an image', 'files LoadImageFromFile fails on', 'image'),
    ('image', 'symlink loop', 'unreadable data folders', 'image'),
    ('image', 'exif 3', 'images the loader turns by their EXIF orientation', 'image'),
    ('image', 'exif 6', 'images the loader turns by their EXIF orientation', 'image'),
    ('label', 'truncated', 'files LoadAnnotations fails on', 'label'),
    ('label', 'empty', 'files LoadAnnotations fails on', 'label'),
    ('label', 'not an image', 'files LoadAnnotations fails on', 'label'),
    ('label', 'symlink loop', 'images without a label map', 'image'),
    ('label', 'three channels', 'label maps with more than one channel', 'label'),
    ('label', 'smaller', 'label and image sizes differ', 'label'),
    ('label', 'value 200', "label maps with values beyond the data set's", 'label'),
]


@pytest.mark.parametrize('fmt', SEG)
@pytest.mark.parametrize('case', range(len(SEG_CASES)),
                         ids=[f'{c[0]}-{c[1]}' for c in SEG_CASES])
def test_each_broken_segmentation_file_is_one_line(fmt, case, template, tmp_path):
    target, corruption, kind, named = SEG_CASES[case]
    split = ('train', 'val')[case % 2]  # both splits, each file position
    root = _copy(template, fmt, str(tmp_path))
    files = dict(zip(('image', 'label'), _pair(fmt, root, split, case % 2)))
    CORRUPTIONS[corruption](files[target])
    line, = _lines(_cfg(SEG[fmt][0], root), [split])
    assert line.startswith(f'{split}: 1 {kind}') and osp.basename(files[named]) in line


@pytest.mark.parametrize('fmt', SEG)
def test_labels_beyond_the_model_head_are_one_line(fmt, template):
    """The data set's classes allow them, the head (decode_head.num_classes) not."""
    cfg = _cfg(SEG[fmt][0], template(fmt), **{'model.decode_head.num_classes': 1})
    line, = _lines(cfg, ['val'])
    assert line.startswith('val: 2 label maps with values beyond '
                           'model.decode_head.num_classes = 1 (ignore index 255): ')


def test_a_folder_loop_is_one_line(template, tmp_path):
    root = _copy(template, 'ade20k', str(tmp_path))
    os.symlink('.', osp.join(root, 'images', 'training', 'loop'))
    line, = _lines(_cfg(SEG['ade20k'][0], root), ['train'])
    assert line.startswith('train: 1 unreadable data folders: ') and 'loop' in line


def test_an_exif_turn_of_an_oblong_image_is_a_size_mismatch(template, tmp_path):
    """The loader turns the image (64x60 -> 60x64), not its label map."""
    root = _copy(template, 'ade20k', str(tmp_path))
    image, label = _pair('ade20k', root, 'train', 0)
    for path in (image, label):
        CORRUPTIONS['smaller'](path)
    CORRUPTIONS['exif 6'](image)
    line, = _lines(_cfg(SEG['ade20k'][0], root), ['train'])
    assert line.startswith('train: 1 label and image sizes differ (as the pipeline decodes '
                           'them): ') and line.endswith('64x60 vs image 60x64')


def _training_loads(cfg: Config):
    """The training data set and each of its samples through its whole pipeline: what
    training reads."""
    from mmengine.registry import DATASETS
    with DATASETS.switch_scope_and_registry(cfg.default_scope) as registry:
        dataset = registry.build(cfg.train_dataloader.dataset)
    return dataset, [dataset[i] for i in range(len(dataset))]


@SETTINGS
@given(fmt=st.sampled_from(sorted(SEG)), target=st.sampled_from([0, 1]),
       index=st.integers(0, 3),
       damage=st.one_of(st.sampled_from(sorted(CORRUPTIONS)),
                        st.tuples(st.floats(0, 1), st.binary(min_size=1, max_size=32))))
def test_whatever_segmentation_damage_the_check_passes_training_loads(
        fmt, target, index, damage, template, tmp_path):
    root = _copy(template, fmt, tempfile.mkdtemp(dir=tmp_path))
    path = _pair(fmt, root, 'train', index)[target]
    if isinstance(damage, str):
        CORRUPTIONS[damage](path)
    else:  # bytes overwritten at a place in the file
        data = bytearray(open(path, 'rb').read())
        at = int(damage[0] * len(data))
        data[at:at + len(damage[1])] = damage[1]
        open(path, 'wb').write(bytes(data))
    cfg = _cfg(SEG[fmt][0], root)
    try:
        datacheck.check_data_sets(cfg, ['train'], full=True)
    except DataError as e:
        stem = osp.basename(path).split('_gtFine')[0].split('_leftImg8bit')[0]
        assert stem.split('.')[0] in str(e), str(e)
        return
    for sample in _training_loads(cfg)[1]:
        label = sample['data_samples'].gt_sem_seg.data.numpy()
        assert label.shape == (1, *sample['inputs'].shape[1:])  # one channel, aligned
        values = np.unique(label)
        assert set(values[values < 255].tolist()) <= set(range(CLASSES[fmt]))


# --------------------------------------------------------------------------- COCO
def _entry(section: str, index: int, **fields):
    def change(coco):
        coco[section][index].update(fields)
    return change


def _drop(section: str, index: int, field: str):
    def change(coco):
        del coco[section][index][field]
    return change


def _same_id(section: str):
    def change(coco):
        coco[section][1]['id'] = coco[section][0]['id']
    return change


#: (name, change of the annotation file, the problem's line); the line names the file
#: (the listed size: the image, else the annotation file)
COCO_CASES = [
    ('bbox of 3 numbers', _entry('annotations', 0, bbox=[1, 2, 3]),
     'annotations with a bad "bbox"'),
    ('string bbox', _entry('annotations', 0, bbox='10,10,5,5'),
     'annotations with a bad "bbox"'),
    ('negative width', _entry('annotations', 1, bbox=[10, 10, -5, 5]),
     'annotations with a bad "bbox"'),
    ('infinite height', _entry('annotations', 2, bbox=[10, 10, 5, math.inf]),
     'annotations with a bad "bbox"'),
    ('no area', _drop('annotations', 0, 'area'), 'annotations with a bad "area"'),
    ('image without width', _drop('images', 0, 'width'), 'images with a bad "width"'),
    ('string height', _entry('images', 1, height='128'), 'images with a bad "height"'),
    ('duplicate annotation ids', _same_id('annotations'), 'duplicate annotation ids'),
    ('duplicate image ids', _same_id('images'), 'duplicate image ids'),
    ('unknown category', _entry('annotations', 0, category_id=999),
     'unknown category ids'),
    ('unlisted image', _entry('annotations', 0, image_id=999),
     'annotations of unlisted images'),
    ('box outside', _entry('annotations', 0, bbox=[100, 100, 60, 10]),
     'boxes outside their image'),
    ('a 400-digit box width', _entry('annotations', 0, bbox=[1.5, 1, 10**400, 5]),
     'annotations with a bad "bbox"'),
    ('a 400-digit image width', _entry('images', 0, width=10**400),
     'image sizes differ from the annotation file'),
    ('listed size differs', _entry('images', 0, width=200),
     'image sizes differ from the annotation file'),
    ('annotations not a list', lambda coco: coco.update(annotations={}),
     'annotation files without a list of "annotations"'),
    ('no categories', lambda coco: coco.update(categories=None),
     'annotation files without a list of "categories"'),
    ('entry not an object', lambda coco: coco['annotations'].__setitem__(0, 5),
     'annotations entries that are not objects'),
]
#: (file: the first image or the annotation file, corruption, the problem's line)
IMAGE = 'train2017/000000000001.jpg'
COCO_FILES = [(IMAGE, 'truncated', 'files LoadImageFromFile fails on'),
              (IMAGE, 'not an image', 'files LoadImageFromFile fails on'),
              (IMAGE, 'symlink loop', 'listed images missing'),
              (JSON, 'truncated', 'unreadable annotation file'),
              (JSON, 'empty', 'unreadable annotation file'),
              (JSON, 'symlink loop', 'unreadable annotation file')]


def _rewrite_json(root: str, change) -> str:
    path = osp.join(root, JSON)
    coco = json.load(open(path))
    change(coco)
    json.dump(coco, open(path, 'w'))
    return path


@pytest.mark.parametrize('case', range(len(COCO_CASES)), ids=[c[0] for c in COCO_CASES])
def test_each_broken_coco_annotation_is_one_line(case, template, tmp_path):
    _, change, kind = COCO_CASES[case]
    root = _copy(template, 'coco', str(tmp_path))
    path = _rewrite_json(root, change)
    line, = _lines(_cfg(COCO, root), ['train'])
    named = osp.join(root, IMAGE) if 'sizes' in kind else path
    assert line.startswith(f'train: 1 {kind}') and named in line


@pytest.mark.parametrize('name,corruption,kind', COCO_FILES)
def test_each_broken_coco_file_is_one_line(name, corruption, kind, template, tmp_path):
    root = _copy(template, 'coco', str(tmp_path))
    CORRUPTIONS[corruption](osp.join(root, name))
    line, = _lines(_cfg(COCO, root), ['train'])
    assert line.startswith(f'train: 1 {kind}: {osp.join(root, name)}')


def test_coco_classes_beyond_the_model_head_are_one_line(template):
    cfg = _cfg(COCO, template('coco'), **{'model.bbox_head.num_classes': 1})
    line, = _lines(cfg, ['train'])
    assert line.startswith('train: ') and 'annotations of classes beyond ' \
        'model.bbox_head.num_classes = 1: ' in line and '(class ' in line


def test_the_fewest_classes_of_every_head_count():
    """Cascade: three box heads and a mask head; the class-agnostic RPN (1) not."""
    cfg = copy.deepcopy(_config('configs/cascade_mask_rcnn_replk31b_coco.py'))
    assert datacheck._class_limit(cfg, 80) == (80, "the data set's 80 classes")
    cfg.model.roi_head.bbox_head[1].num_classes = 7
    assert datacheck._class_limit(cfg, 80) == (7, 'model.roi_head.bbox_head.1.num_classes'
                                                  ' = 7')


def test_zero_size_boxes_are_counted_in_the_summary(template, tmp_path):
    """COCO's own train2017 has boxes of height 0: valid, skipped by mmdet, said."""
    root = _copy(template, 'coco', str(tmp_path))
    _rewrite_json(root, _entry('annotations', 0, bbox=[10, 10, 5, 0], area=0))
    assert 'train 4 images (4 decoded; 1 boxes the data set skips (under 1 pixel or of ' \
        'area 0))' in datacheck.check_data_sets(_cfg(COCO, root), ['train'])


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-3, 300) | st.integers() | st.floats()
    | st.text(max_size=4),
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=3),
                                                                inner, max_size=2),
    max_leaves=6)
#: every field mmdet reads from a COCO annotation file, and a few it does not
FIELDS = ['area', 'bbox', 'category_id', 'file_name', 'height', 'id', 'ignore', 'image_id',
          'iscrowd', 'name', 'segmentation', 'supercategory', 'width']


@SETTINGS
@given(section=st.sampled_from(['annotations', 'categories', 'images']),
       index=st.integers(0, 3),
       field=st.sampled_from(FIELDS), value=st.one_of(st.just('<deleted>'), JSON_VALUES))
def test_whatever_coco_change_the_check_passes_training_loads_unless_said(
        section, index, field, value, template, tmp_path):
    """Nothing escapes but a DataError naming the annotation file; what passes loads
    through the whole training pipeline, every annotation kept or counted as skipped."""
    root = _copy(template, 'coco', tempfile.mkdtemp(dir=tmp_path))

    def change(coco):
        entry = coco[section][index % len(coco[section])]
        if value == '<deleted>':
            entry.pop(field, None)
        else:
            entry[field] = value
    path = _rewrite_json(root, change)
    cfg = _cfg(COCO, root)
    try:
        summary = datacheck.check_data_sets(cfg, ['train'], full=True)
    except DataError as e:
        assert path in str(e) or osp.join(root, 'train2017') in str(e), str(e)
        return
    dataset, _ = _training_loads(cfg)
    labels = [instance['bbox_label'] for i in range(len(dataset))
              for instance in dataset.get_data_info(i)['instances']]
    assert all(0 <= label < cfg.model.bbox_head.num_classes for label in labels)
    kept = len(labels)
    told = sum(int(n) for n in re.findall(r'(\d+) (?:boxes|annotations) ', summary))
    raw = [a for a in json.load(open(path))['annotations'] if not a.get('ignore')]
    assert kept + told == len(raw), summary
