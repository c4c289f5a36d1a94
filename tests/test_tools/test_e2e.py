"""End to end through the real CLI: tools/train.py then tools/test.py on tiny
synthetic data sets in the real formats, for every config family (the
segmentation run must learn: mIoU above the majority-class baseline; the
others must give finite metrics). Bad input: test_checkpoint_loading.py,
test_datacheck.py; tools/dist_train.sh: test_distributed.py."""
import math
import os
import re

import pytest
from conftest import TINY_BACKBONE, WIDTHS, compact, loader_options, run_tool, seg_options

from mmreplk.testing.synthetic import majority_miou

pytestmark = pytest.mark.slow  # every test here runs the tools in subprocesses


def det_options(root: str, scale_keys: list, score_key: str) -> dict:
    """Tiny detector at 128x128, one epoch of 2 iterations."""
    opts = dict(TINY_BACKBONE, **loader_options(root))
    ann = os.path.join(root, 'annotations', 'instances_val2017.json')
    opts.update({k: '[(128,128)]' for k in scale_keys})
    opts.update({
        'model.neck.in_channels': compact(WIDTHS),
        'val_dataloader.dataset.pipeline.1.scale': '(128,128)',
        'test_dataloader.dataset.pipeline.1.scale': '(128,128)',
        'val_evaluator.ann_file': ann,
        'test_evaluator.ann_file': ann,
        'train_cfg.max_epochs': '1',
        'default_hooks.logger.interval': '1',
        # An untrained model scores below the 0.05 default: keep every box
        # so that COCO evaluation has something to score.
        score_key: '0.0',
    })
    return opts


DETR_AUG = [
    'train_dataloader.dataset.pipeline.3.transforms.0.0.scales',
    'train_dataloader.dataset.pipeline.3.transforms.1.0.scales',
    'train_dataloader.dataset.pipeline.3.transforms.1.2.scales',
]


def cascade_options(root: str) -> dict:
    """Tiny Cascade (Mask) R-CNN: few proposals and RoIs (the 4conv1fc heads
    on the default 1000-2000 proposals take a minute per image on CPU)."""
    opts = det_options(root, DETR_AUG, 'model.test_cfg.rcnn.score_thr')
    opts.update({
        'model.train_cfg.rpn_proposal.max_per_img': '64',
        'model.test_cfg.rpn.max_per_img': '32',
        'model.test_cfg.rcnn.max_per_img': '20',
    })
    opts.update({f'model.train_cfg.rcnn.{i}.sampler.num': '32'
                 for i in range(3)})
    # Narrow FPN, RPN and RoI heads: the full 256-channel heads with 1024-wide
    # fully connected layers make a ~450 MB checkpoint that dominates the run.
    opts.update({
        'model.neck.out_channels': '16',
        'model.rpn_head.in_channels': '16',
        'model.rpn_head.feat_channels': '16',
        'model.roi_head.bbox_roi_extractor.out_channels': '16',
    })
    for i in range(3):
        opts.update({f'model.roi_head.bbox_head.{i}.in_channels': '16',
                     f'model.roi_head.bbox_head.{i}.conv_out_channels': '16',
                     f'model.roi_head.bbox_head.{i}.fc_out_channels': '32'})
    return opts


def cascade_mask_options(root: str) -> dict:
    """:func:`cascade_options` with a narrow mask branch."""
    opts = cascade_options(root)
    opts.update({
        'model.roi_head.mask_roi_extractor.out_channels': '16',
        'model.roi_head.mask_head.in_channels': '16',
        'model.roi_head.mask_head.conv_out_channels': '16',
    })
    return opts


def _numbers(log: str, keys: list) -> dict:
    found = {}
    for key in keys:
        m = re.findall(rf'{re.escape(key)}: (-?[\d.]+|nan)', log)
        assert m, f'{key} not in the output:\n{log[-3000:]}'
        found[key] = float(m[-1])
    return found


def _finite(log: str, metrics: list) -> dict:
    values = _numbers(log, metrics)
    assert all(math.isfinite(v) for v in values.values()), values
    return values


def _train(config: str, options: dict, work_dir: str, ckpt: str) -> str:
    """tools/train.py (validation at the end of the run); returns its log."""
    train = run_tool('train.py', f'configs/{config}', '--work-dir', work_dir,
                     options=options)
    assert train.returncode == 0, train.stderr[-4000:]
    assert os.path.isfile(os.path.join(work_dir, ckpt)), os.listdir(work_dir)
    return train.stdout + train.stderr


def _train_and_test(config: str, options: dict, work_dir: str,
                    ckpt: str, metrics: list) -> dict:
    """:func:`_train`, then tools/test.py on the checkpoint it wrote."""
    _train(config, options, work_dir, ckpt)
    test = run_tool('test.py', f'configs/{config}', os.path.join(work_dir, ckpt),
                    '--work-dir', os.path.join(work_dir, 'test'), options=options)
    assert test.returncode == 0, test.stderr[-4000:]
    return _finite(test.stdout + test.stderr, metrics)


def test_upernet_learns(learned_seg, ade20k_root):
    """The validation at the end of the short run (tools/test.py on seg is
    covered by the Cityscapes test) beats predicting the majority class."""
    log = learned_seg.stdout + learned_seg.stderr
    miou = _numbers(log, ['mIoU'])['mIoU']
    assert miou > majority_miou(ade20k_root, num_classes=5) + 1, log[-3000:]


def test_upernet_cityscapes(cityscapes_root, tmp_path):
    opts = seg_options(cityscapes_root)  # whole-image test, as the config
    values = _train_and_test('upernet_replk31b_cityscapes.py', opts,
                             str(tmp_path), 'iter_2.pth', ['mIoU'])
    assert 0 <= values['mIoU'] <= 100


def test_fcos(coco_root, tmp_path):
    opts = det_options(coco_root,
                       ['train_dataloader.dataset.pipeline.2.scales'],
                       'model.test_cfg.score_thr')
    opts.update({'model.neck.out_channels': '64',  # GroupNorm(32) in the head
                 'model.bbox_head.in_channels': '64',
                 'model.bbox_head.feat_channels': '64'})
    log = _train('fcos_replk31b_coco.py', opts, str(tmp_path), 'epoch_1.pth')
    _finite(log, ['coco/bbox_mAP', 'coco/bbox_mAP_50'])  # the end-of-epoch validation


def test_cascade_rcnn(coco_root, tmp_path):
    """Training and its validation (tools/test.py on a detector: the mask test)."""
    log = _train('cascade_rcnn_replk31b_coco.py', cascade_options(coco_root),
                 str(tmp_path), 'epoch_1.pth')
    _finite(log, ['coco/bbox_mAP'])


def test_cascade_mask_rcnn(coco_root, tmp_path):
    opts = cascade_mask_options(coco_root)
    _train_and_test('cascade_mask_rcnn_replk31b_coco.py', opts,
                    str(tmp_path), 'epoch_1.pth',
                    ['coco/bbox_mAP', 'coco/segm_mAP'])


# ---- bad input: one clear line, exit status 1, no traceback (the checks
# themselves are tested in-process in test_apis/test_preflight.py) ----
