# RepLKNet-31B + UPerNet (DESIGN.md section 5): UPerHead on the four stages
# (pool scales 1,2,3,6, 512 channels, dropout 0.1) and an FCN auxiliary head on
# stage 2 (256 channels, loss weight 0.4); SyncBN everywhere (mmengine turns it
# into BN when not distributed); gradient checkpointing on.
_base_ = ['mmseg::_base_/models/upernet_r50.py']

norm_cfg = dict(type='SyncBN', requires_grad=True)
model = dict(
    pretrained=None,
    backbone=dict(
        _delete_=True,
        type='mmreplk.RepLKNet',
        arch='31B',
        out_indices=(0, 1, 2, 3),
        drop_path_rate=0.5,
        norm_cfg=norm_cfg,
        with_cp=True,
        init_cfg=dict(
            type='Pretrained',
            checkpoint='https://download.openmmlab.com/mmclassification/v0/'
            'replknet/replknet-31B_3rdparty_in1k_20221118-fd08e268.pth',
            prefix='backbone.')),
    decode_head=dict(in_channels=[128, 256, 512, 1024], num_classes=150),
    auxiliary_head=dict(in_channels=512, num_classes=150))
