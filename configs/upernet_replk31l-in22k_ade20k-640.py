# RepLKNet-31L (ImageNet-22K) + UPerNet on ADE20K, 640 crops, the scales and
# sliding-window test of upernet_replk31b-in22k_ade20k-640.py.
# Paper: 52.4 / 52.7 mIoU.
# Official: segmentation/configs/RepLKNet-31L_22Kpretrain_upernet_160k_ade20k_640.py,
# run on 64 GPUs x 1 image x 80k iterations (5.12M samples) at lr 2e-4,
# warm-up 800 iterations. This config runs 8 GPUs x 4 images x 160k
# iterations, warm-up 1600 (the same 51,200 samples): the same samples, lr and
# lr curve per sample; auto_scale_lr.base_batch_size is 64, the batch the
# authors used 2e-4 at (docs/configs.md). On GPUs too small for 4 images of
# 640x640, run fewer per GPU on more GPUs (or more iterations) keeping the
# samples.
# Weights: pretrain/replknet-31L_in22k.pth, converted from the official
# RepLKNet-31L_ImageNet-22K.pth by tools/model_converters/convert_checkpoint.py (README).
_base_ = ['./upernet_replk31b-in22k_ade20k-640.py']
model = dict(
    backbone=dict(
        arch='31L',
        drop_path_rate=0.3,
        init_cfg=dict(checkpoint='pretrain/replknet-31L_in22k.pth')),
    decode_head=dict(in_channels=[192, 384, 768, 1536]),
    auxiliary_head=dict(in_channels=768))
auto_scale_lr = dict(enable=False, base_batch_size=64)
