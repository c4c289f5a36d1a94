# RepLKNet-31B (ImageNet-1K, 224) + UPerNet on ADE20K, 512x512 crops.
# Paper: 49.9 / 50.6 mIoU (single / multi-scale).
# Assumes 8 GPUs x 4 images (batch 32) x 160k iterations = 5.12M training
# samples, as the paper's run (40k iterations on 64 GPUs x 2 images). On other
# set-ups keep 5.12M samples (max_iters = 5.12M / total batch) and pass
# --auto-scale-lr.
_base_ = [
    './_base_/upernet_replk31b.py', 'mmseg::_base_/datasets/ade20k.py',
    './_base_/seg_runtime.py'
]
crop_size = (512, 512)
model = dict(data_preprocessor=dict(size=crop_size))
train_dataloader = dict(batch_size=4)
