# RepLKNet-XL (MegData-73M) + UPerNet on ADE20K, 640x640 crops, sliding-window
# test (640, stride 426). Paper: 55.2 / 56.0 mIoU.
# XL: no small kernel, dw_ratio 1.5, a BN on every output stage
# (the arch defaults), inputs normalized with mean = std = 127.5; unlike the
# official config, training uses the training pipeline.
# Assumes 8 GPUs x 4 images (batch 32) x 160k iterations = 5.12M samples (the
# paper's total). On other set-ups keep 5.12M samples and pass --auto-scale-lr.
# Weights: pretrain/replknet-XL_meg73m.pth, converted from the official
# RepLKNet-XL_MegData73M_pretrain.pth by tools/convert_checkpoint.py (README).
_base_ = ['./upernet_replk31b-in22k_ade20k-640.py']
model = dict(
    data_preprocessor=dict(
        mean=[127.5, 127.5, 127.5], std=[127.5, 127.5, 127.5]),
    backbone=dict(
        arch='XL',
        drop_path_rate=0.5,
        norm_intermediate_features=True,
        init_cfg=dict(checkpoint='pretrain/replknet-XL_meg73m.pth')),
    decode_head=dict(in_channels=[256, 512, 1024, 2048]),
    auxiliary_head=dict(in_channels=1024))
