# RepLKNet-31L (ImageNet-22K) + Cascade Mask R-CNN, COCO, 3x.
# Paper: 53.9 box / 46.5 mask AP. Batch and samples as
# cascade_mask_rcnn_replk31b_coco.py (8 GPUs x 1 image, 36 epochs).
# Weights: pretrain/replknet-31L_in22k.pth, converted from the official
# RepLKNet-31L_ImageNet-22K.pth by tools/convert_checkpoint.py (README).
_base_ = ['./cascade_mask_rcnn_replk31b_coco.py']
model = dict(
    backbone=dict(
        arch='31L',
        drop_path_rate=0.7,
        init_cfg=dict(checkpoint='pretrain/replknet-31L_in22k.pth')),
    neck=dict(in_channels=[192, 384, 768, 1536]))
