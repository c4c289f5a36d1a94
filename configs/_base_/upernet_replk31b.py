# RepLKNet-31B + UPerNet, as the official segmentation/configs/
# RepLKNet_upernet.py: UPerHead on the four stages (pool scales 1, 2, 3, 6,
# 512 channels, dropout 0.1) and an FCN auxiliary head on stage 2 (256
# channels, loss weight 0.4); SyncBN everywhere (mmengine turns it into BN
# when not distributed); gradient checkpointing on; drop path 0.5; whole-image
# test unless a config says otherwise.
_base_ = ['mmseg::_base_/models/upernet_r50.py', './replknet.py']

norm_cfg = dict(type='SyncBN', requires_grad=True)
model = dict(
    pretrained=None,
    backbone=dict(_base_.replknet_31b, _delete_=True, drop_path_rate=0.5),
    decode_head=dict(in_channels=[128, 256, 512, 1024], num_classes=150),
    auxiliary_head=dict(in_channels=512, num_classes=150))
