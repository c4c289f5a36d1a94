# RepLKNet-31B (ImageNet-1K, 224) + FCOS, COCO, 2x (24 epochs, lr x0.1 at 16
# and 22), multi-scale training (1333, 640) / (1333, 800), test (1333, 800).
# Paper: 47.0 box AP. FPN from stage 1 with extra convs on its output (ReLU
# before them), GN head.
# Official: detection/configs/RepLKNet-31B_1Kpretrain_fcos_2x_coco.py: 2 images
# per GPU, AdamW lr 2e-4, weight decay 0.05 with none on norm layers
# (norm_decay_mult=0), gradient clipping 35, constant warm-up at 1/3 x lr for
# 500 iterations, drop path 0.5. Its number of GPUs is not stated; 8 is
# assumed (total batch 16, auto_scale_lr.base_batch_size 16). The official
# optimizer also inherits SGD's momentum=0.9 from its base schedule (AdamW
# has no such argument); here AdamW has none (docs/configs.md).
# The warm-up `end` is one past the official count: an mmengine scheduler
# with end=n makes its last change at step n - 1, mmcv 1.x's hook at step n.
_base_ = [
    'mmdet::fcos/fcos_r50-caffe_fpn_gn-head_ms-640-800-2x_coco.py',
    './_base_/replknet.py'
]
# What ./_base_/det_runtime.py sets (mmdet's FCOS config already brings the
# default runtime, so it cannot be a second base).
default_hooks = dict(
    checkpoint=dict(type='mmreplk.SafeCheckpointHook', interval=1, max_keep_ckpts=3))
max_epochs = 24
warmup_iters = 500
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
    paramwise_cfg=dict(norm_decay_mult=0.),
    clip_grad=dict(max_norm=35, norm_type=2))
param_scheduler = [
    dict(
        type='ConstantLR',
        factor=1.0 / 3,
        by_epoch=False,
        begin=0,
        end=warmup_iters + 1),
    dict(
        type='MultiStepLR',
        begin=0,
        end=max_epochs,
        by_epoch=True,
        milestones=[16, 22],
        gamma=0.1)
]
auto_scale_lr = dict(enable=False, base_batch_size=16)
