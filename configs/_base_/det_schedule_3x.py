# 3x schedule (36 epochs, lr x0.1 at epochs 27 and 33, 1000-iteration linear
# warm-up); AdamW lr 4e-4, weight decay 0.05 with none on norm layers.
_base_ = ['mmdet::_base_/schedules/schedule_1x.py']

max_epochs = 36
train_cfg = dict(max_epochs=max_epochs)
param_scheduler = [
    dict(
        type='LinearLR', start_factor=0.001, by_epoch=False, begin=0,
        end=1000),
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
# lr 4e-4 is for a total batch of 8 images (8 GPUs x 1); --auto-scale-lr rescales it.
auto_scale_lr = dict(enable=False, base_batch_size=8)
