# RepLKNet-31B (ImageNet-22K) + Cascade Mask R-CNN, COCO, 3x.
# Paper: 53.0 box / 46.0 mask AP.
# Official: detection/configs/RepLKNet-31B_22Kpretrain_cascade_mask_rcnn_3x_coco.py:
# as cascade_mask_rcnn_replk31b_coco.py with drop path 0.4.
# Weights: pretrain/replknet-31B_in22k.pth, converted from the official
# RepLKNet-31B_ImageNet-22K.pth by tools/model_converters/convert_checkpoint.py (README).
_base_ = ['./cascade_mask_rcnn_replk31b_coco.py']
model = dict(
    backbone=dict(
        drop_path_rate=0.4,
        init_cfg=dict(checkpoint='pretrain/replknet-31B_in22k.pth')))
