# RepLKNet-31B (ImageNet-1K, 224) + Cascade Mask R-CNN, COCO, 3x (36 epochs),
# DETR-style multi-scale + crop augmentation. Paper: 52.2 box / 45.2 mask AP.
# Assumes 8 GPUs x 1 image = batch 8 at lr 4e-4 (the official config: 1 image
# per GPU, lr 4e-4; its GPU count is not stated, 8 is mmdet's norm); 36 epochs =
# 4.26M training samples whatever the batch. With another batch pass
# --auto-scale-lr.
_base_ = [
    './_base_/cascade_mask_rcnn_replk31b_fpn.py',
    './_base_/coco_instance_detr_aug.py', './_base_/det_schedule_3x.py',
    './_base_/det_runtime.py'
]
