# ADE20K with the official configs' scales (mmseg 0.x's ade20k.py; mmseg
# 1.x's ade20k.py keeps them): train resize (2048, 512) x [0.5, 2], crop 512;
# test on images resized to (2048, 512). The multi-scale test (--tta) is that
# of the authors' framework, mmseg 0.x's --aug-test: the test scale times 0.5,
# 0.75, ..., 1.75, each image also flipped (mmseg 1.x's own tta_pipeline
# multiplies the original image size instead).
_base_ = ['mmseg::_base_/datasets/ade20k.py']

img_ratios = [0.5, 0.75, 1.0, 1.25, 1.5, 1.75]
tta_pipeline = [
    dict(type='LoadImageFromFile', backend_args=None),
    dict(
        type='TestTimeAug',
        transforms=[
            [
                dict(
                    type='Resize',
                    scale=(int(2048 * r), int(512 * r)),
                    keep_ratio=True) for r in img_ratios
            ],
            *_base_.tta_pipeline[1].transforms[1:]  # flips, load, pack
        ])
]
