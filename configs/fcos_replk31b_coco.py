# RepLKNet-31B (ImageNet-1K, 224) + FCOS, COCO, 2x (24 epochs, lr x0.1 at 16
# and 22), multi-scale training (1333, 640) / (1333, 800).
# Paper: 47.0 box AP. FPN from stage 1 with extra convs on its output (ReLU
# before them); AdamW lr 2e-4, weight decay 0.05, gradient clipping 35 (no SGD
# momentum, unlike the official config).
# Assumes 8 GPUs x 2 images = batch 16; 24 epochs = 2.84M training samples
# whatever the batch. With another batch pass --auto-scale-lr.
_base_ = [
    'mmdet::fcos/fcos_r50-caffe_fpn_gn-head_ms-640-800-2x_coco.py',
    './_base_/replknet.py'
]
# What ./_base_/det_runtime.py sets (mmdet's FCOS config already brings the
# default runtime, so it cannot be a second base).
default_hooks = dict(
    checkpoint=dict(
        interval=1, max_keep_ckpts=3,
        backend_args=dict(backend='atomic_local')))
model = dict(
    data_preprocessor=dict(
        mean=[123.675, 116.28, 103.53],
        std=[58.395, 57.12, 57.375],
        bgr_to_rgb=True),
    backbone=dict(_base_.replknet_31b, _delete_=True, drop_path_rate=0.5),
    neck=dict(
        in_channels=[128, 256, 512, 1024],
        start_level=1,
        add_extra_convs='on_output',
        relu_before_extra_convs=True))
optim_wrapper = dict(
    _delete_=True,
    type='OptimWrapper',
    optimizer=dict(
        type='AdamW', lr=2e-4, betas=(0.9, 0.999), weight_decay=0.05),
    clip_grad=dict(max_norm=35, norm_type=2))
auto_scale_lr = dict(base_batch_size=16)
