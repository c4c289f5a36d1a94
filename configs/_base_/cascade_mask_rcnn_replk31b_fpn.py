# RepLKNet-31B + FPN (256) + Cascade Mask R-CNN, as the official
# detection/configs/RepLKNet_cascade_mask_rcnn_coco.py: three cascade stages
# with 4conv1fc ConvFC box heads (SyncBN), GIoU loss (weight 10) on decoded
# boxes; SyncBN backbone with gradient checkpointing, drop path 0.6.
_base_ = [
    'mmdet::_base_/models/cascade-mask-rcnn_r50_fpn.py', './replknet.py'
]

norm_cfg = dict(type='SyncBN', requires_grad=True)
cascade_stds = [[0.1, 0.1, 0.2, 0.2], [0.05, 0.05, 0.1, 0.1],
                [0.033, 0.033, 0.067, 0.067]]
model = dict(
    backbone=dict(_base_.replknet_31b, _delete_=True, drop_path_rate=0.6),
    neck=dict(in_channels=[128, 256, 512, 1024]),
    roi_head=dict(bbox_head=[
        dict(
            type='ConvFCBBoxHead',
            num_shared_convs=4,
            num_shared_fcs=1,
            in_channels=256,
            conv_out_channels=256,
            fc_out_channels=1024,
            roi_feat_size=7,
            num_classes=80,
            bbox_coder=dict(
                type='DeltaXYWHBBoxCoder',
                target_means=[0., 0., 0., 0.],
                target_stds=stds),
            reg_class_agnostic=False,
            reg_decoded_bbox=True,
            norm_cfg=norm_cfg,
            loss_cls=dict(
                type='CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0),
            loss_bbox=dict(type='GIoULoss', loss_weight=10.0))
        for stds in cascade_stds
    ]))
