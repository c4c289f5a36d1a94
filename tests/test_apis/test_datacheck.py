"""The data check (mmreplk.apis.datacheck): each kind of broken data set is one line with
its count and first paths, before training; the quick check decodes a sample, --full
everything; train.py runs it unless --no-data-check. The cases by format and corruption
are generated in test_datacheck_cases.py."""
import copy
import functools
import json
import os
import shutil

import numpy as np
import pytest
from conftest import assert_clear_error, import_tool, loader_options, run_tool
from mmengine.config import Config
from PIL import Image

from mmreplk.errors import DataError, DataNotFoundError
from mmreplk.testing.synthetic import CORRUPTIONS, make_ade20k, make_coco

from mmreplk.apis import datacheck
ADE = 'configs/upernet_replk31b_ade20k.py'
COCO = 'configs/fcos_replk31b_coco.py'


@functools.lru_cache()
def _file(path):
    return Config.fromfile(path)


def _cfg(path, root):
    cfg = copy.deepcopy(_file(path))
    cfg.merge_from_dict(loader_options(root))
    return cfg


@pytest.fixture
def ade(tmp_path):
    return make_ade20k(str(tmp_path / 'ade'), 4, 2)


def _problems(cfg, splits=('train', ), full=True) -> list:
    with pytest.raises(DataError) as info:
        datacheck.check_data_sets(cfg, splits, full=full)
    return [line.strip() for line in str(info.value).splitlines()[1:]]


def test_each_kind_of_broken_segmentation_data_is_one_line(ade):
    img, ann = os.path.join(ade, 'images', 'training'), os.path.join(
        ade, 'annotations', 'training')
    names = sorted(os.listdir(img))
    os.remove(os.path.join(ann, names[0].replace('.jpg', '.png')))        # no label
    shutil.copy(os.path.join(ann, names[1].replace('.jpg', '.png')),
                os.path.join(ann, 'stray.png'))                          # no image
    data = open(os.path.join(img, names[1]), 'rb').read()
    open(os.path.join(img, names[1]), 'wb').write(data[:len(data) // 3])  # truncated
    open(os.path.join(ann, names[2].replace('.jpg', '.png')), 'w').write('no png')
    label = os.path.join(ann, names[3].replace('.jpg', '.png'))
    values = np.array(Image.open(label))
    values[0, 0] = 200  # 199 after reduce_zero_label: beyond ADE20K's 150 classes
    Image.fromarray(values[:-4]).save(label)                              # and smaller
    lines = _problems(_cfg(ADE, ade))
    assert [line.split(':')[1].strip() for line in lines] == [
        '1 images without a label map', '1 label maps without an image',
        '1 files LoadImageFromFile fails on', '1 files LoadAnnotations fails on',
        '1 label and image sizes differ (as the pipeline decodes them)',
        "1 label maps with values beyond the data set's 150 classes (ignore index 255)"]
    assert names[0] in lines[0] and 'stray.png' in lines[1]
    assert names[1] in lines[2] and '[199]' in lines[5]


def test_validation_labels_beyond_the_classes_are_counted(ade):
    """They would vanish from the metric without a word."""
    ann = os.path.join(ade, 'annotations', 'validation')
    for name in os.listdir(ann):
        values = np.array(Image.open(os.path.join(ann, name)))
        values[:2, :2] = 180
        Image.fromarray(values).save(os.path.join(ann, name))
    line, = _problems(_cfg(ADE, ade), ('val', ), full=False)
    assert line.startswith("val: 2 label maps with values beyond the data set's 150 "
                           'classes (ignore index 255): ') and line.endswith('([179])')


def test_a_class_subset_maps_the_other_classes_to_ignore(ade):
    """The demo config trains 5 of ADE20K's classes: labels of the other 145 are
    ignored by mmseg, values beyond all 150 are still errors."""
    ann = os.path.join(ade, 'annotations', 'validation')
    first, second = sorted(os.listdir(ann))
    for name, value in ((first, 100), (second, 200)):
        values = np.array(Image.open(os.path.join(ann, name)))
        values[:2, :2] = value
        Image.fromarray(values).save(os.path.join(ann, name))
    line, = _problems(_cfg('configs/demo_upernet_replk-tiny_synthetic.py', ade), ('val', ))
    assert line.startswith("val: 1 label maps with values beyond the data set's 5 "
                           'classes') and \
        second in line and line.endswith('([199])')


def test_an_empty_split_and_the_quick_sample(ade, monkeypatch):
    for name in os.listdir(os.path.join(ade, 'images', 'validation')):
        os.remove(os.path.join(ade, 'images', 'validation', name))
    assert _problems(_cfg(ADE, ade), ('val', )) == [
        f'val: 1 empty split: no image: {os.path.join(ade, "images/validation")} (*.jpg)']
    # a truncated file after the first few: the quick line says how many it decoded,
    # --full decodes (and finds) them all
    CORRUPTIONS['truncated'](os.path.join(ade, 'images', 'training', sorted(
        os.listdir(os.path.join(ade, 'images', 'training')))[3]))
    monkeypatch.setattr(datacheck, 'SAMPLE', 2)
    assert 'train 4 images (2 decoded)' in datacheck.check_data_sets(_cfg(ADE, ade),
                                                                     ['train'])
    line, = _problems(_cfg(ADE, ade), ('train', ), full=True)
    assert line.startswith('train: 1 files LoadImageFromFile fails on')


def test_each_kind_of_broken_coco_data_is_one_line(tmp_path):
    from mmdet.datasets import CocoDataset
    root = make_coco(str(tmp_path / 'coco'), CocoDataset.METAINFO['classes'], 4, 2, 128)
    path = os.path.join(root, 'annotations', 'instances_train2017.json')
    coco = json.load(open(path))
    os.remove(os.path.join(root, 'train2017', coco['images'][0]['file_name']))
    coco['annotations'][0]['bbox'] = [100, 100, 60, 10]
    coco['annotations'][1]['category_id'] = 999
    json.dump(coco, open(path, 'w'))
    lines = _problems(_cfg(COCO, root))
    assert [line.split(':')[1].strip() for line in lines] == [
        '1 listed images missing', f'1 boxes outside their image in {path}',
        f'1 unknown category ids in {path}']
    open(path, 'w').write('{"images": [')
    line, = _problems(_cfg(COCO, root))
    assert line.startswith(f'train: 1 unreadable annotation file: {path} (JSONDecodeError')


@pytest.mark.slow
def test_train_py_checks_the_data_before_training(tmp_path, monkeypatch):
    root = make_ade20k(str(tmp_path / 'ade'), 4, 2)
    ann = os.path.join(root, 'annotations', 'training')
    os.remove(os.path.join(ann, sorted(os.listdir(ann))[0]))
    result = run_tool('train.py', ADE, '--work-dir', str(tmp_path / 'run'),
                      options=loader_options(root))
    assert_clear_error(result, 'the data check found problems (--no-data-check skips it)',
                       'train: 1 images without a label map')
    assert 'Iter(train)' not in result.stdout + result.stderr
    monkeypatch.setattr('sys.argv', ['train.py', ADE, '--no-data-check'])
    assert import_tool('train.py').parse_args().no_data_check


def test_check_dataset_tool(ade, capsys):
    tool = import_tool('analysis_tools/check_dataset.py')
    options = [f'{k}={v}' for k, v in loader_options(ade).items()]
    assert tool.main([ADE, '--split', 'val', '--full', '--cfg-options', *options]
                     ).startswith('data check (full): val 2 images (2 decoded), no problem')
    os.remove(os.path.join(ade, 'images', 'validation', sorted(
        os.listdir(os.path.join(ade, 'images', 'validation')))[0]))
    with pytest.raises(DataError, match='val: 1 label maps without an image'):
        tool.main([ADE, '--split', 'val', '--cfg-options', *options])
    with pytest.raises(DataNotFoundError, match='val data set not found: .*nowhere does '
                       'not exist. To get it, download ADEChallengeData2016.zip'):
        tool.main([ADE, '--split', 'val', '--cfg-options',
                   f'val_dataloader.dataset.data_root={ade}/nowhere'])
