# RepLKNet-XL (MegData-73M) + Cascade Mask R-CNN, COCO, 3x.
# Paper: 55.5 box / 48.0 mask AP. XL normalizes its output stages and takes
# inputs normalized with mean = std = 127.5.
# Official: detection/configs/RepLKNet-XL_MegData73Mpretrain_cascade_mask_rcnn_3x_coco.py:
# as cascade_mask_rcnn_replk31b_coco.py with 4 images per GPU, drop path 0.5,
# mean = std = 127.5 (lr 4e-4 and the 500-iteration warm-up unchanged; 8 GPUs
# assumed: total batch 32, auto_scale_lr.base_batch_size 32). The official
# config validates with ImageNet mean/std (its val pipeline was not
# overridden); here training, validation and test all use 127.5.
# Weights: pretrain/replknet-XL_meg73m.pth, converted from the official
# RepLKNet-XL_MegData73M_pretrain.pth by tools/model_converters/convert_checkpoint.py (README).
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
train_dataloader = dict(batch_size=4)
auto_scale_lr = dict(enable=False, base_batch_size=32)
