# RepLKNet-31L (ImageNet-22K) + Cascade Mask R-CNN, COCO, 3x.
# Paper: 53.9 box / 46.5 mask AP.
# Official: detection/configs/RepLKNet-31L_22Kpretrain_cascade_mask_rcnn_3x_coco.py:
# as cascade_mask_rcnn_replk31b_coco.py with drop path 0.7.
# Weights: pretrain/replknet-31L_in22k.pth, converted from the official
# RepLKNet-31L_ImageNet-22K.pth by tools/model_converters/convert_checkpoint.py (README).
_base_ = ['./cascade_mask_rcnn_replk31b_coco.py']
model = dict(
    backbone=dict(
        arch='31L',
        drop_path_rate=0.7,
        init_cfg=dict(checkpoint='pretrain/replknet-31L_in22k.pth')),
    neck=dict(in_channels=[192, 384, 768, 1536]))
