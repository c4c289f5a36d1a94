# The embedded default, run by `python tools/demo.py`: a small RepLKNet
# (2 blocks per stage, kernels 13/11/7/5) + UPerNet trained on one CPU process
# on the synthetic ADE20K-layout set that tools/demo.py writes to
# data/synthetic_ade (64x64 shapes on textured backgrounds, 5 classes named
# after ADE20K's first five). Same model family, dataset class, runner and
# metric as upernet_replk31b_ade20k.py, scaled down to finish in minutes.
_base_ = ['./upernet_replk31b_ade20k.py']

data_root = 'data/synthetic_ade'
crop_size = (64, 64)
num_classes = 5
max_iters = 400
metainfo = dict(
    classes=('wall', 'building', 'sky', 'floor', 'tree'),
    palette=[[120, 120, 120], [180, 120, 120], [6, 230, 230], [80, 50, 50],
             [4, 200, 3]])

model = dict(
    data_preprocessor=dict(size=crop_size),
    backbone=dict(
        arch=dict(
            _delete_=True,
            layers=[1, 1, 1, 1],
            channels=[32, 64, 96, 128],
            large_kernel_sizes=[13, 11, 7, 5],
            small_kernel=3,
            dw_ratio=1.0),
        drop_path_rate=0.1,
        with_cp=False,
        init_cfg=None),
    decode_head=dict(
        in_channels=[32, 64, 96, 128], channels=64, num_classes=num_classes),
    auxiliary_head=dict(
        in_channels=96, channels=32, num_classes=num_classes))

train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', reduce_zero_label=True),
    dict(
        type='RandomResize',
        scale=(64, 64),
        ratio_range=(0.75, 1.5),
        keep_ratio=True),
    dict(type='RandomCrop', crop_size=crop_size, cat_max_ratio=0.75),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackSegInputs')
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', reduce_zero_label=True),
    dict(type='PackSegInputs')
]
train_dataloader = dict(
    batch_size=8,
    num_workers=2,
    dataset=dict(
        data_root=data_root, metainfo=metainfo, pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=1,
    num_workers=1,
    dataset=dict(
        data_root=data_root, metainfo=metainfo, pipeline=test_pipeline))
test_dataloader = val_dataloader

optim_wrapper = dict(optimizer=dict(lr=2e-3))
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-3, by_epoch=False, begin=0,
         end=40),
    dict(type='PolyLR', power=1.0, eta_min=0.0, by_epoch=False, begin=40,
         end=max_iters)
]
train_cfg = dict(max_iters=max_iters, val_interval=max_iters)
default_hooks = dict(
    logger=dict(interval=25),
    checkpoint=dict(interval=max_iters))
env_cfg = dict(cudnn_benchmark=False, dist_cfg=dict(backend='gloo'))
# A fixed seed (weights, data order, augmentation): the demo's mIoU is reproducible
# on a machine, instead of varying by tens of points between runs.
randomness = dict(seed=0)
