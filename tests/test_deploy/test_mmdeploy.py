"""docs/deploy.md: mmdeploy 1.3.1's torch2onnx, run through the page's own deploy configs
and export script, exports the demo UPerNet (default depthwise conv) and an FCOS detector
with a RepLKNet backbone; ONNX Runtime gives PyTorch's outputs."""
import functools
import inspect
import re
import runpy
import sys

import mmcv
import numpy as np
import pytest
import torch
from conftest import ROOT, randomize_bn
from mmengine.config import Config
from mmengine.registry import DefaultScope
from optional import import_installed

DOC = (ROOT / 'docs' / 'deploy.md').read_text()
EXTRA = 'pip install --no-deps mmdeploy==1.3.1 && pip install ".[deploy]"'
SEG_SIZE = 192  # the smallest size mmdeploy's adaptive-pool rewrite keeps exact
DET_SIZE = 96


def _block(after: str) -> str:
    """The code block of docs/deploy.md that follows the text ``after``."""
    return re.search(re.escape(after) + r'.*?```\w*\n(.*?)```', DOC, re.S).group(1)


@pytest.fixture(scope='module')
def mmdeploy():
    import_installed('onnxruntime', 'onnxruntime', EXTRA)
    return import_installed('mmdeploy', 'mmdeploy.apis', EXTRA)


def _deploy_cfg(name: str) -> Config:
    """The page's deploy config ``name``."""
    return Config.fromstring(_block(f'`{name}`, the same as'), '.py')


def _export(monkeypatch, tmp_path, deploy_name: str, cfg: Config, image: np.ndarray,
            prepare=lambda model: None):
    """Run the page's export.py with its deploy config ``deploy_name`` on ``cfg`` and
    ``image``, from a checkpoint of a model with random BN statistics (and ``prepare``).
    Returns (that PyTorch model in its training form, deploy config, onnx path)."""
    from mmengine.registry import MODELS
    deploy_path = tmp_path / deploy_name
    deploy_path.write_text(_block(f'`{deploy_name}`, the same as'))
    model_path, image_path = tmp_path / 'model.py', tmp_path / 'image.png'
    cfg.dump(str(model_path))
    mmcv.imwrite(image, str(image_path))
    deploy_cfg = Config.fromfile(str(deploy_path))
    torch.manual_seed(0)
    with DefaultScope.overwrite_default_scope(cfg.default_scope):
        model = MODELS.build(cfg.model)
    randomize_bn(model)
    prepare(model)
    model.eval()
    torch.save({'state_dict': model.state_dict()}, tmp_path / 'model.pth')

    script = tmp_path / 'export.py'
    script.write_text(_block('`export.py`:'))
    monkeypatch.setattr(torch.onnx, 'export', torch.onnx.export)  # restored afterwards
    monkeypatch.setattr(sys, 'argv', [str(script), str(deploy_path), str(model_path),
                                      str(tmp_path / 'model.pth'), str(image_path),
                                      str(tmp_path / 'work')])
    # mmdeploy's rewriters find their caller with inspect.stack(), which also reads the
    # source lines of every frame (seconds in a process holding mmseg, mmdet and pytest);
    # without those lines (context 0) it gives the same frames
    monkeypatch.setattr(inspect, 'stack', functools.partial(inspect.stack, 0))
    runpy.run_path(str(script), run_name='__main__')
    return model, deploy_cfg, tmp_path / 'work' / 'end2end.onnx'


def _no_custom_nodes(path) -> set:
    """The op types of an ONNX file, all of them standard ONNX ops (no mmreplk:: or
    mmdeploy:: node)."""
    import onnx
    nodes = onnx.load(str(path)).graph.node
    assert {node.domain for node in nodes} <= {'', 'ai.onnx'}
    return {node.op_type for node in nodes}


def _run_onnx(path, inputs: torch.Tensor) -> list:
    import onnxruntime
    session = onnxruntime.InferenceSession(str(path), providers=['CPUExecutionProvider'])
    return session.run(None, {'input': inputs.numpy()})


def test_demo_upernet(mmdeploy, monkeypatch, tmp_path):
    cfg = Config.fromfile(str(ROOT / 'configs' / 'demo_upernet_replk-tiny_synthetic.py'))
    assert 'dwconv_impl' not in cfg.model.backbone  # the default depthwise conv
    monkeypatch.delenv('MMREPLK_DWCONV', raising=False)
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (SEG_SIZE, SEG_SIZE, 3), dtype=np.uint8)
    model, deploy_cfg, onnx_path = _export(monkeypatch, tmp_path,
                                           'segmentation_onnxruntime_dynamic.py', cfg, image)
    ops = _no_custom_nodes(onnx_path)
    assert 'Conv' in ops and 'AveragePool' in ops  # the PPM's pools, rewritten

    from mmdeploy.apis import build_task_processor
    task = build_task_processor(cfg, deploy_cfg, 'cpu')
    data, inputs = task.create_input(image, data_preprocessor=model.data_preprocessor)
    with torch.no_grad():
        expected = model.predict(inputs, data['data_samples'])[0].pred_sem_seg.data
    labels = _run_onnx(onnx_path, inputs)[0]
    assert labels.shape == (1, 1, SEG_SIZE, SEG_SIZE)
    assert (torch.from_numpy(labels[0]).long() == expected).float().mean() > 0.999


def test_fcos_detector(mmdeploy, monkeypatch, tmp_path, tiny_arch):
    cfg = Config.fromfile(str(ROOT / 'configs' / 'fcos_replk31b_coco.py'))
    cfg.model.backbone.update(arch=tiny_arch, init_cfg=None)
    cfg.model.neck.update(in_channels=tiny_arch['channels'], out_channels=16)
    cfg.model.bbox_head.update(in_channels=16, feat_channels=16, stacked_convs=1,
                               norm_cfg=dict(type='GN', num_groups=4, requires_grad=True))
    for pipeline in (cfg.test_pipeline, cfg.test_dataloader.dataset.pipeline):
        next(t for t in pipeline if t.type == 'Resize').scale = (DET_SIZE, DET_SIZE)
    # mmdet's post-processing as the deploy config's (which the ONNX graph carries)
    post = _deploy_cfg('detection_onnxruntime_dynamic.py').codebase_config.post_processing
    cfg.model.test_cfg.update(score_thr=post.score_threshold, nms_pre=post.pre_top_k,
                              max_per_img=post.keep_top_k,
                              nms=dict(type='nms', iou_threshold=post.iou_threshold))
    image = np.random.default_rng(0).integers(0, 256, (DET_SIZE, DET_SIZE, 3), np.uint8)
    model, deploy_cfg, onnx_path = _export(
        monkeypatch, tmp_path, 'detection_onnxruntime_dynamic.py', cfg, image,
        prepare=lambda m: torch.nn.init.zeros_(m.bbox_head.conv_cls.bias))  # ~0.5 scores
    assert 'NonMaxSuppression' in _no_custom_nodes(onnx_path)

    from mmdeploy.apis import build_task_processor
    task = build_task_processor(cfg, deploy_cfg, 'cpu')
    data, inputs = task.create_input(image, data_preprocessor=model.data_preprocessor)
    dets, labels = _run_onnx(onnx_path, inputs)
    with torch.no_grad():
        expected = model.predict(inputs, data['data_samples'], rescale=False)[0]
    expected = expected.pred_instances
    assert len(expected) > 10 and dets.shape == (1, len(expected), 5)
    order = np.argsort(-dets[0, :, 4], kind='stable')
    np.testing.assert_allclose(dets[0, order, 4], expected.scores.numpy(), atol=1e-4)
    np.testing.assert_allclose(dets[0, order, :4], expected.bboxes.numpy(), atol=1e-2)
    np.testing.assert_array_equal(labels[0, order], expected.labels.numpy())
