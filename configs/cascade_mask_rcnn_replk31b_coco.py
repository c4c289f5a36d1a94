# RepLKNet-31B (ImageNet-1K, 224) + Cascade Mask R-CNN, COCO, 3x (36 epochs),
# DETR-style multi-scale + crop augmentation. Paper: 52.2 box / 45.2 mask AP.
# Official: detection/configs/RepLKNet-31B_1Kpretrain_cascade_mask_rcnn_3x_coco.py:
# 1 image per GPU, lr 4e-4, warm-up 500 iterations from 1e-3 x lr, drop path
# 0.6. Its number of GPUs is not stated; 8 is assumed (total batch 8,
# auto_scale_lr.base_batch_size 8).
_base_ = [
    './_base_/cascade_mask_rcnn_replk31b_fpn.py',
    './_base_/coco_instance_detr_aug.py', './_base_/det_schedule_3x.py',
    './_base_/det_runtime.py'
]
