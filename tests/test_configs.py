"""Every config loads, states the paper's settings and builds its full-size
model; one full-size forward per family at a small input."""
import gc
from pathlib import Path

import pytest
import torch
from mmengine.config import Config
from mmengine.model import revert_sync_batchnorm
from mmengine.registry import MODELS, init_default_scope

ROOT = Path(__file__).resolve().parents[1]
PAPER = sorted(p.name for p in (ROOT / 'configs').glob('*.py')
               if not p.name.startswith('demo_'))
EXPECTED = {
    'upernet_replk31b_ade20k.py', 'upernet_replk31b-in22k_ade20k-640.py',
    'upernet_replk31l-in22k_ade20k-640.py', 'upernet_replkxl_ade20k-640.py',
    'upernet_replk31b_cityscapes.py', 'fcos_replk31b_coco.py',
    'cascade_rcnn_replk31b_coco.py', 'cascade_mask_rcnn_replk31b_coco.py',
    'cascade_mask_rcnn_replk31b-in22k_coco.py',
    'cascade_mask_rcnn_replk31l-in22k_coco.py',
    'cascade_mask_rcnn_replkxl_coco.py'
}
CHANNELS = {'31B': 128, '31L': 192, 'XL': 256}


def load(name: str) -> Config:
    return Config.fromfile(str(ROOT / 'configs' / name))


def test_all_paper_configs_present():
    assert set(PAPER) == EXPECTED


def _samples(cfg: Config) -> int:
    batch = 8 * cfg.train_dataloader.batch_size
    return batch * cfg.train_cfg.max_iters


@pytest.mark.parametrize('name', PAPER)
def test_config_settings(name):
    cfg = load(name)
    backbone = cfg.model.backbone
    assert backbone.type == 'mmreplk.RepLKNet'
    assert backbone.with_cp is True
    assert backbone.norm_cfg.type == 'SyncBN'
    assert 'mmreplk' in cfg.custom_imports.imports
    assert cfg.custom_imports.allow_failed_imports is False
    assert cfg.auto_scale_lr.base_batch_size == 8 * (
        cfg.train_dataloader.batch_size)
    ckpt = cfg.default_hooks.checkpoint
    assert ckpt.backend_args == dict(backend='atomic_local')
    assert ckpt.get('max_keep_ckpts', -1) != 1  # the previous one survives
    init = backbone.init_cfg
    assert init.type == 'Pretrained' and init.prefix == 'backbone.'
    assert init.checkpoint.startswith(
        ('https://download.openmmlab.com/mmclassification/v0/replknet/',
         'pretrain/'))
    arch = backbone.arch
    assert ('in22k' in init.checkpoint) == ('in22k' in name)
    assert (arch == 'XL') == ('meg73m' in init.checkpoint)
    optimizer = cfg.optim_wrapper.optimizer
    assert optimizer.type == 'AdamW' and optimizer.weight_decay == 0.05
    assert 'momentum' not in optimizer
    if name.startswith('upernet'):
        assert cfg.default_scope == 'mmseg'
        assert cfg.model.decode_head.norm_cfg.type == 'SyncBN'
        assert cfg.model.decode_head.in_channels[0] == CHANNELS[arch]
        assert optimizer.lr == 2e-4
        iters = 80000 if 'cityscapes' in name else 160000
        assert cfg.train_cfg.max_iters == iters
        assert cfg.param_scheduler[-1].end == iters
        # the paper's total number of training samples
        assert _samples(cfg) == (1_280_000 if 'cityscapes' in name else
                                 5_120_000)
        train_types = [t.type for t in cfg.train_dataloader.dataset.pipeline]
        assert 'RandomCrop' in train_types  # not the test pipeline
    else:
        assert cfg.default_scope == 'mmdet'
        assert cfg.model.neck.in_channels[0] == CHANNELS[arch]
        epochs = 24 if name.startswith('fcos') else 36
        assert cfg.train_cfg.max_epochs == epochs
    if name.startswith('cascade'):
        heads = cfg.model.roi_head.bbox_head
        assert len(heads) == 3
        assert all(h.num_shared_convs == 4 and h.num_shared_fcs == 1
                   and h.norm_cfg.type == 'SyncBN'
                   and h.loss_bbox.type == 'GIoULoss' for h in heads)
        assert optimizer.lr == 4e-4
        assert cfg.train_dataloader.batch_size == 1  # as the official configs
        assert ('mask_head' in cfg.model.roi_head and
                cfg.model.roi_head.mask_head is not None) == ('mask' in name)
    if name.startswith('fcos'):
        assert cfg.optim_wrapper.clip_grad.max_norm == 35
        assert cfg.model.neck.start_level == 1
        assert cfg.model.neck.add_extra_convs == 'on_output'
    if arch == 'XL':
        assert cfg.model.data_preprocessor.mean == [127.5] * 3
        assert cfg.model.data_preprocessor.std == [127.5] * 3
        assert backbone.norm_intermediate_features is True
    if '640' in name:
        assert cfg.model.test_cfg.mode == 'slide'
        assert tuple(cfg.model.test_cfg.stride) == (426, 426)


def build(cfg: Config) -> torch.nn.Module:
    init_default_scope(cfg.default_scope)
    model = MODELS.build(cfg.model)
    return revert_sync_batchnorm(model).eval()  # as the runner on 1 process


@pytest.mark.parametrize('name', PAPER)
def test_full_size_model_builds(name):
    cfg = load(name)
    model = build(cfg)
    params = sum(p.numel() for p in model.backbone.parameters())
    expected = {'31B': 79e6, '31L': 172e6, 'XL': 335e6}[cfg.model.backbone
                                                         .arch]
    assert 0.95 * expected < params < expected  # classifier head excluded
    del model
    gc.collect()


def _seg_forward(name: str, num_classes: int):
    model = build(load(name))
    with torch.no_grad():
        out = model(torch.randn(1, 3, 64, 64), mode='tensor')
    assert out.shape == (1, num_classes, 16, 16)
    assert torch.isfinite(out).all()


def _det_forward(name: str, with_mask: bool):
    from mmdet.structures import DetDataSample
    model = build(load(name))
    meta = dict(img_shape=(128, 128), ori_shape=(128, 128),
                pad_shape=(128, 128), batch_input_shape=(128, 128),
                scale_factor=(1.0, 1.0))
    with torch.no_grad():
        result = model(torch.randn(1, 3, 128, 128),
                       [DetDataSample(metainfo=meta)], mode='predict')[0]
    boxes = result.pred_instances.bboxes
    assert boxes.ndim == 2 and boxes.shape[1] == 4
    assert torch.isfinite(boxes).all()
    assert ('masks' in result.pred_instances) == with_mask


def test_forward_upernet_ade20k():
    _seg_forward('upernet_replk31b_ade20k.py', 150)


def test_forward_upernet_cityscapes():
    _seg_forward('upernet_replk31b_cityscapes.py', 19)


def test_forward_fcos():
    _det_forward('fcos_replk31b_coco.py', with_mask=False)


def test_forward_cascade_rcnn():
    _det_forward('cascade_rcnn_replk31b_coco.py', with_mask=False)


def test_forward_cascade_mask_rcnn():
    _det_forward('cascade_mask_rcnn_replk31b_coco.py', with_mask=True)


def test_demo_config_is_a_small_upernet():
    cfg = load('demo_upernet_replk-tiny_synthetic.py')
    model = build(cfg)
    assert sum(p.numel() for p in model.parameters()) < 3e6
    assert cfg.val_evaluator.type == 'IoUMetric'
