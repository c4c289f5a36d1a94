# RepLKNet-31B (ImageNet-1K, 224) + UPerNet on Cityscapes: train resize
# (2049, 1025) x [0.5, 2], crop 769, align_corners=True; test on images resized
# to (2049, 1025), whole image (test_cfg mode 'whole', as the official config;
# not by sliding window). Paper: 83.1 / 83.5 mIoU.
# Official: segmentation/configs/RepLKNet-31B_1Kpretrain_upernet_80k_cityscapes_769.py,
# run on 32 GPUs x 2 images x 20k iterations (1.28M samples) at lr 2e-4,
# warm-up 400 iterations. This config runs the set-up the official comment
# calls the original single-node one: 8 GPUs x 2 images x 80k iterations, the
# same samples and lr, warm-up 1600 iterations (the same 25,600 samples);
# auto_scale_lr.base_batch_size is 64, the batch the authors used 2e-4 at
# (docs/configs.md).
_base_ = [
    './_base_/upernet_replk31b.py',
    './_base_/cityscapes_769x769_official.py', './_base_/seg_runtime.py'
]
crop_size = (769, 769)
max_iters = 80000
warmup_iters = 1600
model = dict(
    data_preprocessor=dict(size=crop_size),
    decode_head=dict(num_classes=19, align_corners=True),
    auxiliary_head=dict(num_classes=19, align_corners=True),
    test_cfg=dict(mode='whole'))
train_dataloader = dict(batch_size=2)
auto_scale_lr = dict(enable=False, base_batch_size=64)
param_scheduler = [
    dict(_base_.param_scheduler[0], end=warmup_iters + 1),
    dict(_base_.param_scheduler[1], end=max_iters + 1)
]
train_cfg = dict(max_iters=max_iters, val_interval=8000)
default_hooks = dict(checkpoint=dict(interval=8000))
