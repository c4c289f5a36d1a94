"""The model index (model-index.yml, configs/metafile/*.yml): one entry per config, each
saying what its config trains and starts from, with the parameters and FLOPs that
tools/analysis_tools/get_flops.py counts; docs/configs.md's zoo table is rendered from it."""
import os.path as osp

import pytest
import torch
from conftest import ROOT, import_tool, load_shipped_config
from optional import import_installed

from mmreplk.analysis.complexity import build_from_config, count_params

# train dataset type -> (task, data set) of the first result
TASKS = {'ADE20KDataset': ('Semantic Segmentation', 'ADE20K'),
         'CityscapesDataset': ('Semantic Segmentation', 'Cityscapes'),
         'CocoDataset': ('Object Detection', 'COCO')}
NOT_IN_PAPER = {'demo_upernet_replk-tiny_synthetic', 'cascade_rcnn_replk31b_coco'}
# the paper's downstream tables (also the authors' README): metrics, params, FLOPs
PAPER = {
    'upernet_replk31b_cityscapes': ({'mIoU': 83.1, 'mIoU(ms+flip)': 83.5}, '110M', '2315G'),
    'upernet_replk31b_ade20k': ({'mIoU': 49.9, 'mIoU(ms+flip)': 50.6}, '112M', '1170G'),
    'upernet_replk31b-in22k_ade20k-640': ({'mIoU': 51.5, 'mIoU(ms+flip)': 52.3}, '112M',
                                          '1829G'),
    'upernet_replk31l-in22k_ade20k-640': ({'mIoU': 52.4, 'mIoU(ms+flip)': 52.7}, '207M',
                                          '2404G'),
    'upernet_replkxl_ade20k-640': ({'mIoU': 55.2, 'mIoU(ms+flip)': 56.0}, '374M', '3431G'),
    'fcos_replk31b_coco': ({'box AP': 47.0}, '87M', '437G'),
    'cascade_mask_rcnn_replk31b_coco': ({'box AP': 52.2, 'mask AP': 45.2}, '137M', '965G'),
    'cascade_mask_rcnn_replk31b-in22k_coco': ({'box AP': 53.0, 'mask AP': 46.0}, '137M',
                                              '965G'),
    'cascade_mask_rcnn_replk31l-in22k_coco': ({'box AP': 53.9, 'mask AP': 46.5}, '229M',
                                              '1321G'),
    'cascade_mask_rcnn_replkxl_coco': ({'box AP': 55.5, 'mask AP': 48.0}, '392M', '1958G'),
}


@pytest.fixture(scope='module')
def index():
    return import_tool('analysis_tools/model_index.py')


@pytest.fixture(scope='module')
def entries(index):
    return [entry for _, entry in index.load_models()]


@pytest.fixture(scope='module')
def configs(entries):
    return {e['Name']: load_shipped_config(osp.basename(e['Config'])) for e in entries}


def test_every_config_has_one_entry_and_every_entry_a_config(index, entries):
    on_disk = sorted(p.name for p in (ROOT / 'configs').glob('*.py'))
    listed = [osp.basename(e['Config']) for e in entries]
    assert sorted(listed) == on_disk
    assert [e['Name'] for e in entries] == [osp.splitext(n)[0] for n in listed]
    assert all(e['Config'] == f'configs/{osp.basename(e["Config"])}' for e in entries)
    metafiles = sorted(str(p.relative_to(ROOT))
                       for p in (ROOT / 'configs' / 'metafile').glob('*.yml'))
    assert sorted(index.metafiles()) == metafiles


def _train_dataset(cfg) -> dict:
    dataset = cfg.train_dataloader.dataset
    while 'dataset' in dataset:
        dataset = dataset.dataset
    return dataset


def test_entries_say_what_each_config_trains_and_starts_from(entries, configs):
    for e in entries:
        cfg, meta = configs[e['Name']], e['Metadata']
        results = [(r['Task'], r['Dataset']) for r in e.get('Results', [])]
        if e['Name'] in NOT_IN_PAPER:
            assert results == [] and 'Paper FLOPs' not in meta, e['Name']
        else:
            expected = [TASKS[_train_dataset(cfg).type]]
            if cfg.model.get('roi_head', {}).get('mask_head'):
                expected.append(('Instance Segmentation', 'COCO'))
            assert results == expected, e['Name']
            assert e['In Collection'].startswith('RepLKNet')
        backbone = cfg.model.backbone
        arch = backbone.arch if isinstance(backbone.arch, str) else 'tiny'
        assert meta['Backbone'] == f'RepLKNet-{arch}', e['Name']
        init = backbone.init_cfg
        if init is None:
            assert meta['Pretrain'] == 'none' and 'Pretrained Weights' not in meta
            assert 'Weights' not in e, e['Name']
        elif '://' in init.checkpoint:
            assert meta['Pretrained Weights'] == init.checkpoint, e['Name']
            assert meta['Pretrain'] == 'ImageNet-1K' and 'Pretrained File' not in meta
            # what `mim download mmreplk --config NAME` fetches: the weights it loads
            assert e['Weights'] == init.checkpoint, e['Name']
        else:  # the authors' file, converted once (docs/configs.md)
            assert meta['Pretrained File'] == init.checkpoint, e['Name']
            assert meta['Pretrained Weights'].startswith('https://drive.google.com/')
            assert meta['Pretrain'] in ('ImageNet-22K', 'MegData-73M')
            assert 'Weights' not in e, e['Name']  # a Drive page, no file to download


def test_paper_results(entries):
    stated = {e['Name']: ({k: v for r in e['Results'] for k, v in r['Metrics'].items()},
                          e['Metadata']['Paper Parameters'], e['Metadata']['Paper FLOPs'])
              for e in entries if 'Results' in e}
    assert stated == PAPER


def test_docs_zoo_table_is_the_index(index):
    docs = (ROOT / 'docs' / 'configs.md').read_text()
    assert docs == index.docs_with_table(docs), \
        'run: python tools/analysis_tools/model_index.py docs'


def test_mi_check_passes():
    """model-index's own check (``mi check``): fields and file references (the
    collections' README) are valid."""
    index = import_installed('model-index', 'modelindex.load_model_index',
                             'pip install model-index')
    assert index.load(str(ROOT / 'model-index.yml')).check(silent=True) == []


def _params_on_meta(cfg) -> int:
    """The 'whole' parameters get_flops.py counts in the deploy form, built on 'meta'."""
    with torch.device('meta'):
        model, task = build_from_config(cfg, backbone_overrides=dict(deploy=True))
    params = count_params(model)
    if getattr(model, 'auxiliary_head', None) is not None:
        params -= count_params(model.auxiliary_head)
    return params


@pytest.mark.slow
def test_parameters_are_what_the_models_have(entries, configs):
    measured = {e['Name']: _params_on_meta(configs[e['Name']]) for e in entries}
    assert measured == {e['Name']: e['Metadata']['Parameters'] for e in entries}


def test_parameters_and_flops_are_what_get_flops_counts(index, entries):
    """Recounted for the demo model (a full-size count takes seconds to minutes each:
    ``model_index.py measure`` does them); the full-size parameters are checked above."""
    entry = next(e for e in entries if e['Name'] == 'demo_upernet_replk-tiny_synthetic')
    assert index.measure(osp.join(ROOT, entry['Config']), index.flops_shape(entry)) == {
        k: entry['Metadata'][k] for k in ('Parameters', 'FLOPs')}
