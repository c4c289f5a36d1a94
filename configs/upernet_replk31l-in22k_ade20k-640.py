# RepLKNet-31L (ImageNet-22K) + UPerNet on ADE20K, 640x640 crops, sliding-window
# test (640, stride 426). Paper: 52.4 / 52.7 mIoU.
# Assumes 8 GPUs x 4 images (batch 32) x 160k iterations = 5.12M samples (the
# paper's total). On other set-ups keep 5.12M samples and pass --auto-scale-lr.
# Weights: pretrain/replknet-31L_in22k.pth, converted from the official
# RepLKNet-31L_ImageNet-22K.pth by tools/convert_checkpoint.py (README).
_base_ = ['./upernet_replk31b-in22k_ade20k-640.py']
model = dict(
    backbone=dict(
        arch='31L',
        drop_path_rate=0.3,
        init_cfg=dict(checkpoint='pretrain/replknet-31L_in22k.pth')),
    decode_head=dict(in_channels=[192, 384, 768, 1536]),
    auxiliary_head=dict(in_channels=768))
