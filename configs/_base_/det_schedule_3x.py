# 3x schedule of the official Cascade Mask R-CNN configs (mmdet 2.x
# schedule_1x with lr_config step=[27, 33], 36 epochs): linear warm-up from
# 1e-3 x lr over 500 iterations, lr x0.1 at epochs 27 and 33; AdamW lr 4e-4,
# betas (0.9, 0.999), weight decay 0.05 with none on norm layers.
# The warm-up `end` is one past the official count: an mmengine scheduler
# with end=n makes its last change at step n - 1, mmcv 1.x's hook at step n.
_base_ = ['mmdet::_base_/schedules/schedule_1x.py']

max_epochs = 36
warmup_iters = 500
train_cfg = dict(max_epochs=max_epochs)
param_scheduler = [
    dict(
        type='LinearLR',
        start_factor=0.001,
        by_epoch=False,
        begin=0,
        end=warmup_iters + 1),
    dict(
        type='MultiStepLR',
        begin=0,
        end=max_epochs,
        by_epoch=True,
        milestones=[27, 33],
        gamma=0.1)
]
optim_wrapper = dict(
    optimizer=dict(
        _delete_=True,
        type='AdamW',
        lr=4e-4,
        betas=(0.9, 0.999),
        weight_decay=0.05),
    paramwise_cfg=dict(norm_decay_mult=0.))
# The official configs use lr 4e-4 at 1 image per GPU; they do not state the
# number of GPUs, 8 is assumed (the official README tests with 8 processes,
# mmdet's convention): base batch 8. XL, at 4 images per GPU, sets 32.
auto_scale_lr = dict(enable=False, base_batch_size=8)
