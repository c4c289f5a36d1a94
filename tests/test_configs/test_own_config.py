"""docs/own_config.md (and README, which shows its first): each snippet, as written there, on top of mmseg's / mmdet's own
installed config: the heads (mmseg) or the neck (mmdet) take the widths of the snippet's
arch, the backbone is built with SyncBN, the optimizer gives norms and biases no weight
decay (and layer decay where the snippet asks for it), and at a tiny arch the model takes
one training step on CPU."""
import math
import re

import pytest
import torch
from conftest import ROOT
from mmengine.config import Config
from mmengine.model import revert_sync_batchnorm
from mmengine.optim import build_optim_wrapper
from mmengine.registry import DefaultScope

from mmreplk.engine.optimizers import check_optimizer_constructor
from mmreplk.models.arch import ARCH_ZOO

DOC = ROOT / 'docs' / 'own_config.md'
SNIPPETS = re.findall(r"```python\n(_base_ = '(mm\w+)::.*?)```", DOC.read_text(), re.S)
TINY = dict(layers=[1, 1, 1, 1], channels=[8, 16, 24, 32], large_kernel_sizes=[5, 5, 5, 5],
            small_kernel=3, dw_ratio=1.0)
WIDTH = 16  # of every head and of the FPN
SIZE = 64


def _host(snippet: str) -> str:
    return re.search(r"::(\w+)/", snippet).group(1)


def test_the_doc_has_the_three_snippets():
    assert [(scope, _host(s)) for s, scope in SNIPPETS] == [
        ('mmseg', 'swin'), ('mmseg', 'convnext'), ('mmdet', 'convnext')]
    readme = re.findall(r'```python\n(.*?)```', (ROOT / 'README.md').read_text(), re.S)
    assert SNIPPETS[0][0] in readme  # the README's snippet is the first one, tested here


def _stage_inputs(model: dict) -> dict:
    """Where the config feeds the backbone's stages: head or neck -> in_channels."""
    if 'decode_head' in model:
        return {'decode_head': model.decode_head.in_channels,
                'auxiliary_head': model.auxiliary_head.in_channels}
    return {'neck': model.neck.in_channels}


def _expected_inputs(model: dict, widths: list) -> dict:
    """What each head or neck must take from a backbone with stage ``widths``."""
    if 'decode_head' in model:
        index = model.auxiliary_head.in_index
        return {'decode_head': [widths[i] for i in model.decode_head.in_index],
                'auxiliary_head': widths[index]}
    return {'neck': widths}


def _tiny(cfg: Config) -> None:
    """The test's own changes: a tiny arch (the heads' inputs follow its widths by the
    rule checked above), narrow heads, a small input and few RoIs, fp32 on CPU."""
    model = cfg.model
    model.backbone.update(arch=TINY, init_cfg=None, with_cp=False)
    for part, value in _expected_inputs(model, TINY['channels']).items():
        model[part].in_channels = value
    if 'decode_head' in model:
        model.data_preprocessor.size = (SIZE, SIZE)
        model.decode_head.channels = WIDTH
        model.auxiliary_head.channels = WIDTH
    else:
        roi = model.roi_head
        model.neck.out_channels = WIDTH
        model.rpn_head.update(in_channels=WIDTH, feat_channels=WIDTH)
        roi.bbox_roi_extractor.out_channels = roi.mask_roi_extractor.out_channels = WIDTH
        for head in roi.bbox_head:
            head.update(in_channels=WIDTH, conv_out_channels=WIDTH, fc_out_channels=WIDTH)
        roi.mask_head.update(in_channels=WIDTH, conv_out_channels=WIDTH)
        model.train_cfg.rpn_proposal.update(nms_pre=64, max_per_img=32)
        for stage in model.train_cfg.rcnn:
            stage.sampler.num = 8
    cfg.optim_wrapper.type = 'OptimWrapper'
    cfg.optim_wrapper.pop('loss_scale', None)


def _seg_batch(num_classes: int, batch: int = 2) -> dict:
    """Random images and labels (two: the pooling module's 1x1 cell needs a batch for
    BN)."""
    from mmengine.structures import PixelData
    from mmseg.structures import SegDataSample
    samples = []
    for _ in range(batch):
        sample = SegDataSample(metainfo=dict(img_shape=(SIZE, SIZE),
                                             ori_shape=(SIZE, SIZE)))
        sample.gt_sem_seg = PixelData(data=torch.randint(0, num_classes, (1, SIZE, SIZE)))
        samples.append(sample)
    images = [torch.randint(0, 256, (3, SIZE, SIZE), dtype=torch.uint8)
              for _ in range(batch)]
    return dict(inputs=images, data_samples=samples)


def _det_batch() -> dict:
    from mmdet.testing import demo_mm_inputs
    return demo_mm_inputs(1, [(3, SIZE, SIZE)], num_items=[2], with_mask=True)


@pytest.mark.parametrize('snippet, scope', SNIPPETS,
                         ids=[f'{scope}-{_host(s)}' for s, scope in SNIPPETS])
def test_snippet_builds_and_trains_one_step(snippet, scope, tmp_path):
    path = tmp_path / 'my_config.py'
    path.write_text(snippet)
    cfg = Config.fromfile(str(path))
    check_optimizer_constructor(cfg)  # the snippet passes the config check
    widths = ARCH_ZOO[cfg.model.backbone.arch]['channels']
    assert _stage_inputs(cfg.model) == _expected_inputs(cfg.model, widths)
    assert cfg.model.backbone.norm_cfg.type == 'SyncBN'
    _tiny(cfg)
    torch.manual_seed(0)
    with DefaultScope.overwrite_default_scope(scope):
        from mmengine.registry import MODELS
        model = MODELS.build(cfg.model)
        assert isinstance(model.backbone.stem[0].bn, torch.nn.SyncBatchNorm)
        model = revert_sync_batchnorm(model)  # mmengine's runner, not distributed
        wrapper = build_optim_wrapper(model, cfg.optim_wrapper)

    groups = [(name, group) for group in wrapper.optimizer.param_groups
              for name in _names(model, group)]
    decay = {name: group['weight_decay'] for name, group in groups}
    lr = {name: group['lr'] for name, group in groups}
    backbone = {n: p for n, p in model.named_parameters() if n.startswith('backbone.')}
    flat = [n for n, p in backbone.items() if p.ndim == 1]
    assert flat and all(decay[n] == 0 for n in flat)
    assert all(decay[n] > 0 for n, p in backbone.items() if p.ndim > 1)
    if 'constructor' in cfg.optim_wrapper:  # layer decay: the stem learns slowest
        assert lr['backbone.stem.0.conv.weight'] == min(lr.values()) < max(lr.values())
    else:
        assert len(set(lr.values())) == 1

    batch = _seg_batch(cfg.model.decode_head.num_classes) if scope == 'mmseg' \
        else _det_batch()
    before = model.backbone.stem[0].conv.weight.detach().clone()
    model.train()
    losses = model.train_step(batch, wrapper)
    assert losses and all(math.isfinite(float(v)) for v in losses.values())
    assert not torch.equal(before, model.backbone.stem[0].conv.weight)


def _names(model: torch.nn.Module, group: dict):
    """The parameter names of an optimizer param group."""
    if 'param_names' in group:
        return group['param_names']
    ids = {id(p) for p in group['params']}
    return [n for n, p in model.named_parameters() if id(p) in ids]
