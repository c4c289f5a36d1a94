"""docs/own_config.md: each snippet, as written there, on top of mmseg's / mmdet's own
installed config, builds a RepLKNet model (SyncBN, the heads' widths matching the stages)
and an optimizer (no weight decay on norms and biases; layer decay where the snippet asks
for it) and takes one training step on CPU at a tiny depth."""
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

DOC = ROOT / 'docs' / 'own_config.md'
SNIPPETS = re.findall(r"```python\n(_base_ = '(mm\w+)::.*?)```", DOC.read_text(), re.S)
WIDTHS_31B = [128, 256, 512, 1024]
# 31B's stage widths (what the snippets' in_channels must match), one block per stage
TINY_31B = dict(layers=[1, 1, 1, 1], channels=WIDTHS_31B, large_kernel_sizes=[5, 5, 5, 5],
                small_kernel=3, dw_ratio=1.0)
SIZE = 64


def _host(snippet: str) -> str:
    return re.search(r"::(\w+)/", snippet).group(1)


def test_the_doc_has_the_three_snippets():
    assert [(scope, _host(s)) for s, scope in SNIPPETS] == [
        ('mmseg', 'swin'), ('mmseg', 'convnext'), ('mmdet', 'convnext')]


def _tiny(cfg: Config) -> None:
    """The test's own changes: a shallow backbone at 31B's widths, narrow heads, a small
    input and few RoIs, fp32 on CPU."""
    model = cfg.model
    model.backbone.update(arch=TINY_31B, init_cfg=None)
    model.data_preprocessor.pop('size', None)
    if 'decode_head' in model:
        model.decode_head.channels = 16
        model.auxiliary_head.channels = 8
    else:
        model.train_cfg.rpn_proposal.update(nms_pre=64, max_per_img=32)
        for stage in model.train_cfg.rcnn:
            stage.sampler.num = 8
    cfg.optim_wrapper.type = 'OptimWrapper'
    cfg.optim_wrapper.pop('loss_scale', None)


def _seg_batch(num_classes: int) -> dict:
    from mmengine.structures import PixelData
    from mmseg.structures import SegDataSample
    sample = SegDataSample(metainfo=dict(img_shape=(SIZE, SIZE), ori_shape=(SIZE, SIZE)))
    labels = torch.randint(0, num_classes, (1, SIZE, SIZE))
    sample.gt_sem_seg = PixelData(data=labels)
    image = torch.randint(0, 256, (3, SIZE, SIZE), dtype=torch.uint8)
    return dict(inputs=[image], data_samples=[sample])


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
    assert cfg.model.backbone.arch == '31B'
    _tiny(cfg)
    torch.manual_seed(0)
    with DefaultScope.overwrite_default_scope(scope):
        from mmengine.registry import MODELS
        model = MODELS.build(cfg.model)
        assert isinstance(model.backbone.stem[0].bn, torch.nn.SyncBatchNorm)
        model = revert_sync_batchnorm(model)  # mmengine's runner, not distributed
        wrapper = build_optim_wrapper(model, cfg.optim_wrapper)

    decay = {name: group['weight_decay'] for group in wrapper.optimizer.param_groups
             for name in _names(model, group)}
    backbone = {n: p for n, p in model.named_parameters() if n.startswith('backbone.')}
    flat = [n for n, p in backbone.items() if p.ndim == 1]
    assert flat and all(decay[n] == 0 for n in flat)
    assert all(decay[n] > 0 for n, p in backbone.items() if p.ndim > 1)
    if 'constructor' in cfg.optim_wrapper:  # layer decay: the stem learns slowest
        lrs = {group['lr'] for group in wrapper.optimizer.param_groups}
        assert len(lrs) > 2

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
