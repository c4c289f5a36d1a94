"""docs/training.md's "Inference on your images": its MMSegInferencer and DetInferencer lines run as
written (from a folder laid out as after `make demo`, with small checkpoints) and save the
drawn predictions."""
import os
import re

import cv2
import numpy as np
import pytest
import torch
from conftest import ROOT, TINY_ARCH
from mmengine.config import Config

from mmreplk.analysis.complexity import build_from_config
from mmreplk.testing.synthetic import make_ade20k

DEMO = 'configs/demo_upernet_replk-tiny_synthetic.py'
CASCADE = 'cascade_mask_rcnn_replk31b_coco.py'
# the README's detector, small: tiny backbone, 128-pixel test scale, few proposals
TINY_CASCADE = f'''_base_ = '{ROOT}/configs/{CASCADE}'
model = dict(backbone=dict(arch=dict(_delete_=True, **{TINY_ARCH}), init_cfg=None),
             neck=dict(in_channels={TINY_ARCH['channels']}),
             test_cfg=dict(rpn=dict(nms_pre=100, max_per_img=20)))
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=(128, 128), keep_ratio=True),
    dict(type='PackDetInputs', meta_keys=('img_id', 'img_path', 'ori_shape',
                                          'img_shape', 'scale_factor'))]
test_dataloader = dict(dataset=dict(pipeline=test_pipeline))
'''


def readme_block(name: str) -> str:
    """The python block of docs/training.md's inference section that uses ``name``."""
    section = (ROOT / 'docs' / 'training.md').read_text().split('## Inference on your images')[1]
    section = section.split('\n## ')[0]
    blocks = re.findall(r'```python\n(.*?)```', section, re.S)
    return next(b for b in blocks if name in b)


def _save_weights(config, path) -> None:
    model, _ = build_from_config(Config.fromfile(str(config)))
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({'state_dict': model.state_dict()}, path)


@pytest.fixture
def workdir(tmp_path, monkeypatch):
    """A folder as after `make demo`: configs/, data/synthetic_ade, work_dirs/demo/."""
    os.symlink(ROOT / 'configs', tmp_path / 'configs')
    make_ade20k(str(tmp_path / 'data' / 'synthetic_ade'), 1, 8, 64)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_readme_mmseg_inferencer(workdir):
    code = readme_block('MMSegInferencer')
    weights = re.search(r"weights='([^']+)'", code)[1]
    _save_weights(ROOT / DEMO, workdir / weights)
    exec(code, {})
    image = re.search(r"inferencer\('([^']+)'", code)[1]
    vis = workdir / 'work_dirs' / 'inference' / 'vis' / os.path.basename(image)
    drawn, original = cv2.imread(str(vis)), cv2.imread(image)
    assert drawn.shape == original.shape and not np.array_equal(drawn, original)


def test_readme_det_inferencer(workdir):
    code = readme_block('DetInferencer')
    assert f"'configs/{CASCADE}'" in code
    os.unlink(workdir / 'configs')  # the README's config, shrunk
    (workdir / 'configs').mkdir()
    (workdir / 'configs' / CASCADE).write_text(TINY_CASCADE)
    _save_weights(workdir / 'configs' / CASCADE,
                  workdir / re.search(r"weights='([^']+)'", code)[1])
    image = re.search(r"inferencer\('([^']+)'", code)[1]
    cv2.imwrite(image, cv2.imread(str(next((workdir / 'data').rglob('*.jpg')))))
    exec(code, {})
    vis = workdir / 'work_dirs' / 'inference' / 'vis' / os.path.basename(image)
    assert cv2.imread(str(vis)).shape == cv2.imread(image).shape
