# COCO instances with the official Cascade configs' training augmentation
# ("from DETR / Sparse R-CNN"): flip, then either shorter side 480..800 (step
# 32), or shorter side 400/500/600, crop 384..600 and shorter side 480..800
# again (long side at most 1333). Test at (1333, 800).
_base_ = ['mmdet::_base_/datasets/coco_instance.py']

multi_scales = [(1333, s) for s in range(480, 801, 32)]
train_pipeline = [
    dict(type='LoadImageFromFile', backend_args=None),
    dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
    dict(type='RandomFlip', prob=0.5),
    dict(
        type='RandomChoice',
        transforms=[
            [
                dict(
                    type='RandomChoiceResize',
                    scales=multi_scales,
                    keep_ratio=True)
            ],
            [
                dict(
                    type='RandomChoiceResize',
                    scales=[(1333, 400), (1333, 500), (1333, 600)],
                    keep_ratio=True),
                dict(
                    type='RandomCrop',
                    crop_type='absolute_range',
                    crop_size=(384, 600),
                    allow_negative_crop=True),
                dict(
                    type='RandomChoiceResize',
                    scales=multi_scales,
                    keep_ratio=True)
            ],
        ]),
    dict(type='PackDetInputs')
]
# 1 image per GPU, as the official Cascade configs (samples_per_gpu=1; XL 4).
train_dataloader = dict(batch_size=1, dataset=dict(pipeline=train_pipeline))
