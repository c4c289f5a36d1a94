# Runtime and schedule shared by the UPerNet configs (RepLKNet paper, DESIGN.md
# section 5): AdamW lr 2e-4, betas (0.9, 0.999), weight decay 0.05 with none on
# norm layers, 1500-iteration linear warm-up, then poly (power 1.0) to 0.
# Checkpoints are written atomically (mmreplk's 'atomic_local' file backend).
_base_ = [
    'mmseg::_base_/default_runtime.py',
    'mmseg::_base_/schedules/schedule_160k.py'
]

max_iters = 160000
warmup_iters = 1500
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
        end=warmup_iters),
    dict(
        type='PolyLR',
        power=1.0,
        eta_min=0.0,
        by_epoch=False,
        begin=warmup_iters,
        end=max_iters)
]
train_cfg = dict(max_iters=max_iters, val_interval=16000)
default_hooks = dict(
    checkpoint=dict(
        interval=16000,
        max_keep_ckpts=3,
        backend_args=dict(backend='atomic_local')))
# lr 2e-4 is for a total batch of 32 images; --auto-scale-lr rescales it.
auto_scale_lr = dict(enable=False, base_batch_size=32)
