# RepLKNet-31B (ImageNet-22K) + Cascade Mask R-CNN, COCO, 3x.
# Paper: 53.0 box / 46.0 mask AP. Batch and samples as
# cascade_mask_rcnn_replk31b_coco.py (8 GPUs x 1 image, 36 epochs).
# Weights: pretrain/replknet-31B_in22k.pth, converted from the official
# RepLKNet-31B_ImageNet-22K.pth by tools/convert_checkpoint.py (README).
_base_ = ['./cascade_mask_rcnn_replk31b_coco.py']
model = dict(
    backbone=dict(
        drop_path_rate=0.4,
        init_cfg=dict(checkpoint='pretrain/replknet-31B_in22k.pth')))
