# RepLKNet-31B (ImageNet-1K, 224) + Cascade R-CNN (boxes only), COCO, 3x,
# DETR-style multi-scale + crop augmentation. No official config: the set-up
# of cascade_mask_rcnn_replk31b_coco.py without the mask branch (1 image per
# GPU, 8 GPUs assumed, lr 4e-4, auto_scale_lr.base_batch_size 8).
_base_ = [
    './_base_/cascade_mask_rcnn_replk31b_fpn.py',
    './_base_/coco_instance_detr_aug.py', './_base_/det_schedule_3x.py',
    './_base_/det_runtime.py'
]
model = dict(
    data_preprocessor=dict(pad_mask=False),
    roi_head=dict(mask_roi_extractor=None, mask_head=None))
train_pipeline = [
    dict(type='LoadImageFromFile', backend_args=None),
    dict(type='LoadAnnotations', with_bbox=True),
    *_base_.train_pipeline[2:]
]
test_pipeline = [
    dict(type='LoadImageFromFile', backend_args=None),
    dict(type='Resize', scale=(1333, 800), keep_ratio=True),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(
        type='PackDetInputs',
        meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape',
                   'scale_factor'))
]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
val_dataloader = dict(dataset=dict(pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(metric='bbox')
test_evaluator = val_evaluator
