# Cityscapes with the official configs' scales (mmseg 0.x's
# cityscapes_769x769.py; mmseg 1.x's keeps them): train resize (2049, 1025) x
# [0.5, 2], crop 769; test on images resized to (2049, 1025). Multi-scale test
# (--tta) as ./ade20k_official.py: the test scale times 0.5, ..., 1.75, each
# image also flipped.
_base_ = ['mmseg::_base_/datasets/cityscapes_769x769.py']

img_ratios = [0.5, 0.75, 1.0, 1.25, 1.5, 1.75]
tta_pipeline = [
    dict(type='LoadImageFromFile', backend_args=None),
    dict(
        type='TestTimeAug',
        transforms=[
            [
                dict(
                    type='Resize',
                    scale=(int(2049 * r), int(1025 * r)),
                    keep_ratio=True) for r in img_ratios
            ],
            *_base_.tta_pipeline[1].transforms[1:]  # flips, load, pack
        ])
]
