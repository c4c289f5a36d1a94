# Runtime and schedule of the UPerNet configs, as the official ones: AdamW
# lr 2e-4, betas (0.9, 0.999), weight decay 0.05 with none on norm layers
# (norm_decay_mult=0); a linear warm-up from 1e-6 x lr multiplied into a poly
# decay (power 1, down to 0) that runs from iteration 0 to the last one:
# mmcv 1.x's 'poly' policy with linear warm-up, which the official configs
# use (mmseg 1.x's own configs instead start the poly after the warm-up).
# Each `end` is one past the official count because an mmengine scheduler
# with end=n makes its last change at step n - 1 where mmcv 1.x's hook made
# it at step n: with the +1 the lr equals the official formula at every
# iteration. Each config sets max_iters, warmup_iters, the batch and
# auto_scale_lr; docs/configs.md lists the official values.
# Checkpoints are written atomically and rotated so that no kill can leave none
# (mmreplk's SafeCheckpointHook).
_base_ = [
    'mmseg::_base_/default_runtime.py',
    'mmseg::_base_/schedules/schedule_160k.py'
]

max_iters = 160000
warmup_iters = 1600
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(
        _delete_=True,
        type='AdamW',
        lr=2e-4,
        betas=(0.9, 0.999),
        weight_decay=0.05),
    paramwise_cfg=dict(norm_decay_mult=0.))
param_scheduler = [
    dict(
        type='LinearLR',
        start_factor=1e-6,
        by_epoch=False,
        begin=0,
        end=warmup_iters + 1),
    dict(
        type='PolyLR',
        power=1.0,
        eta_min=0.0,
        by_epoch=False,
        begin=0,
        end=max_iters + 1)
]
train_cfg = dict(max_iters=max_iters, val_interval=16000)
default_hooks = dict(
    checkpoint=dict(
        type='mmreplk.SafeCheckpointHook', interval=16000, max_keep_ckpts=3))
