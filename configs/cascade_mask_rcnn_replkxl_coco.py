# RepLKNet-XL (MegData-73M) + Cascade Mask R-CNN, COCO, 3x.
# Paper: 55.5 box / 48.0 mask AP. XL normalizes its output stages and takes
# inputs normalized with mean = std = 127.5, in training AND testing (the
# official config validated with ImageNet mean/std). Batch and samples as
# cascade_mask_rcnn_replk31b_coco.py (8 GPUs x 1 image, 36 epochs).
# Weights: pretrain/replknet-XL_meg73m.pth, converted from the official
# RepLKNet-XL_MegData73M_pretrain.pth by tools/convert_checkpoint.py (README).
_base_ = ['./cascade_mask_rcnn_replk31b_coco.py']
model = dict(
    data_preprocessor=dict(
        mean=[127.5, 127.5, 127.5], std=[127.5, 127.5, 127.5]),
    backbone=dict(
        arch='XL',
        drop_path_rate=0.5,
        norm_intermediate_features=True,
        init_cfg=dict(checkpoint='pretrain/replknet-XL_meg73m.pth')),
    neck=dict(in_channels=[256, 512, 1024, 2048]))
