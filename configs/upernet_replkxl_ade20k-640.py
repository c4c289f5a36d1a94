# RepLKNet-XL (MegData-73M) + UPerNet on ADE20K, 640 crops, the scales and
# sliding-window test of upernet_replk31b-in22k_ade20k-640.py.
# Paper: 55.2 / 56.0 mIoU.
# XL: no small kernel, dw_ratio 1.5, a BN on every output stage (the arch
# defaults), inputs normalized with mean = std = 127.5.
# Official: segmentation/configs/RepLKNet-XL_MegData73M_upernet_160k_ade20k_640.py,
# run on 16 GPUs x 2 images x 160k iterations at lr 2e-4, warm-up 1500
# iterations. This config runs 8 GPUs x 4 images: the same total batch 32,
# iterations, lr and warm-up; auto_scale_lr.base_batch_size 32.
# Unlike the official config, which trains on its test pipeline (no random
# resize, crop, flip or photometric distortion), training uses the training
# pipeline (docs/configs.md).
# Weights: pretrain/replknet-XL_meg73m.pth, converted from the official
# RepLKNet-XL_MegData73M_pretrain.pth by tools/model_converters/convert_checkpoint.py (README).
_base_ = ['./upernet_replk31b-in22k_ade20k-640.py']
warmup_iters = 1500
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
param_scheduler = [
    dict(_base_.param_scheduler[0], end=warmup_iters + 1),
    _base_.param_scheduler[1]
]
auto_scale_lr = dict(enable=False, base_batch_size=32)
