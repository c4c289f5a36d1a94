# RepLKNet-31B (ImageNet-22K) + UPerNet on ADE20K, 640x640 crops, sliding-window
# test (640, stride 426). Paper: 51.5 / 52.3 mIoU.
# Assumes 8 GPUs x 4 images (batch 32) x 160k iterations = 5.12M samples (the
# paper's total). On other set-ups keep 5.12M samples and pass --auto-scale-lr.
# Weights: pretrain/replknet-31B_in22k.pth, converted from the official
# RepLKNet-31B_ImageNet-22K.pth by tools/convert_checkpoint.py (README).
_base_ = [
    './_base_/upernet_replk31b.py', 'mmseg::_base_/datasets/ade20k_640x640.py',
    './_base_/seg_runtime.py'
]
crop_size = (640, 640)
model = dict(
    data_preprocessor=dict(size=crop_size),
    backbone=dict(
        drop_path_rate=0.3,
        init_cfg=dict(checkpoint='pretrain/replknet-31B_in22k.pth')),
    test_cfg=dict(mode='slide', crop_size=crop_size, stride=(426, 426)))
train_dataloader = dict(batch_size=4)
