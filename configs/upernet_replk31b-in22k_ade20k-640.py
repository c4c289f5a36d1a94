# RepLKNet-31B (ImageNet-22K) + UPerNet on ADE20K, 640 crops: train resize
# (2048, 512) x [0.5, 2], crop 640; test on images resized to (2048, 512) by
# sliding window 640, stride 426 (not mmseg's ade20k_640x640 scale (2560,
# 640)). Paper: 51.5 / 52.3 mIoU.
# Official: segmentation/configs/RepLKNet-31B_22Kpretrain_upernet_160k_ade20k_640.py,
# run on 64 GPUs x 2 images x 40k iterations (5.12M samples) at lr 2e-4,
# warm-up 400 iterations. As upernet_replk31b_ade20k.py, this config runs
# 8 GPUs x 4 images x 160k iterations, warm-up 1600 (the same samples, lr and
# lr curve per sample); auto_scale_lr.base_batch_size 128 (docs/configs.md).
# Weights: pretrain/replknet-31B_in22k.pth, converted from the official
# RepLKNet-31B_ImageNet-22K.pth by tools/model_converters/convert_checkpoint.py (README).
_base_ = [
    './_base_/upernet_replk31b.py', './_base_/ade20k_official.py',
    './_base_/seg_runtime.py'
]
crop_size = (640, 640)
model = dict(
    data_preprocessor=dict(size=crop_size),
    backbone=dict(
        drop_path_rate=0.3,
        init_cfg=dict(checkpoint='pretrain/replknet-31B_in22k.pth')),
    test_cfg=dict(mode='slide', crop_size=crop_size, stride=(426, 426)))
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', reduce_zero_label=True),
    dict(
        type='RandomResize',
        scale=(2048, 512),
        ratio_range=(0.5, 2.0),
        keep_ratio=True),
    dict(type='RandomCrop', crop_size=crop_size, cat_max_ratio=0.75),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PhotoMetricDistortion'),
    dict(type='PackSegInputs')
]
train_dataloader = dict(batch_size=4, dataset=dict(pipeline=train_pipeline))
auto_scale_lr = dict(enable=False, base_batch_size=128)
