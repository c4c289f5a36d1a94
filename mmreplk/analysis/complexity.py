"""Parameters and FLOPs of RepLKNet models and of mmseg / mmdet models built on them.

Counting is mmengine's (:class:`mmengine.analysis.FlopAnalyzer`, a jit-trace counter):
one fused multiply-add counts as one FLOP, so the totals are multiply-accumulates (MACs),
the convention of the RepLKNet paper. A convolution counts
``N * H_out * W_out * C_out * (C_in / groups) * Kh * Kw`` (padding taps included, bias
ignored); an eval-mode BatchNorm counts 2 per element, bilinear up-sampling 4 per output
element, adaptive average pooling 1 per input element; element-wise ops (ReLU, GELU,
additions) and RoIAlign count nothing.

Large-kernel depthwise convs are counted as the convolutions they are: under a jit trace
:func:`mmreplk.ops.depthwise_conv2d` runs stock ``F.conv2d`` (``lowers_to_stock``), so any
FlopAnalyzer, ``mmengine.analysis.get_model_complexity_info`` included, counts them on every
``dwconv_impl``.

mmseg and mmdet are imported lazily, only by the functions that build from configs.
"""
import copy
import importlib
from collections import Counter
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import torch
import torch.nn as nn

from mmreplk.errors import ConfigError

# --------------------------------------------------------------------------- counting
def count_params(model: nn.Module, trainable_only: bool = False) -> int:
    """Number of (distinct) parameter elements of ``model``."""
    from mmengine.analysis import parameter_count
    if trainable_only:
        return sum(p.numel() for p in model.parameters() if p.requires_grad)
    return int(parameter_count(model)[''])


class FlopCount:
    """Result of one trace: totals per module and per operator."""

    def __init__(self, analyzer) -> None:
        self._by_module = analyzer.by_module()
        self._by_module_op = analyzer.by_module_and_operator()
        self.unsupported = dict(analyzer.unsupported_ops())

    def total(self, module: str = '') -> int:
        if module not in self._by_module:
            raise KeyError(f'no module named {module!r} was traced')
        return int(self._by_module[module])

    def by_operator(self, module: str = '') -> Dict[str, int]:
        return {k: int(v) for k, v in self._by_module_op.get(module, Counter()).items()}


def count_flops(model: nn.Module, inputs) -> FlopCount:
    """Trace ``model(*inputs)`` once (eval mode, no grad) with mmengine's FlopAnalyzer.

    Args:
        model: any module.
        inputs: a tensor or a tuple of the forward's arguments.
    """
    from mmengine.analysis import FlopAnalyzer
    if not isinstance(inputs, tuple):
        inputs = (inputs, )
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            analyzer = _run_analyzer(FlopAnalyzer, model, inputs)
    finally:
        model.train(was_training)
    return analyzer


def _run_analyzer(cls, model, inputs) -> FlopCount:
    analyzer = cls(model, inputs)
    analyzer.unsupported_ops_warnings(False)
    analyzer.uncalled_modules_warnings(False)
    analyzer.tracer_warnings('none')
    return FlopCount(analyzer)


def conv2d_macs(in_channels: int, out_channels: int, kernel_size, out_hw,
                groups: int = 1, batch: int = 1) -> int:
    """Hand count of one convolution's MACs (same convention as the counter)."""
    kh, kw = (kernel_size, kernel_size) if isinstance(kernel_size, int) else kernel_size
    oh, ow = (out_hw, out_hw) if isinstance(out_hw, int) else out_hw
    return batch * oh * ow * out_channels * (in_channels // groups) * kh * kw


# --------------------------------------------------------------------------- deploy form
def switch_to_deploy(model: nn.Module) -> List[str]:
    """Call ``switch_to_deploy()`` on the outermost submodules that have it (the RepLKNet
    backbone or classifier); returns their names. Heads are left as they are."""
    done: List[str] = []
    for name, m in list(model.named_modules()):
        if any(d == '' or name.startswith(d + '.') for d in done):
            continue
        fn = getattr(m, 'switch_to_deploy', None)
        if callable(fn):
            fn()
            done.append(name)
    return done


def count_batchnorms(model: nn.Module) -> int:
    return sum(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in model.modules())


# --------------------------------------------------------------------------- wrappers
class TensorForward(nn.Module):
    """Wrap ``model`` so that ``forward(x)`` runs ``fn(model, x)``; the wrapped model is
    the submodule ``model`` (so its backbone is traced as ``model.backbone``)."""

    def __init__(self, model: nn.Module, fn: Callable) -> None:
        super().__init__()
        self.model = model
        self._fn = fn

    def forward(self, x: torch.Tensor):
        return self._fn(self.model, x)


def segmentor_forward(model: nn.Module, x: torch.Tensor):
    """Backbone (+ neck) and decode head: what an EncoderDecoder runs at inference (the
    auxiliary head is training-only)."""
    return model.decode_head(model.extract_feat(x))


def random_proposals(num: int, height: int, width: int, seed: int = 0
                     ) -> torch.Tensor:
    """``num`` boxes (x1, y1, x2, y2) inside a height x width image, fixed seed."""
    g = torch.Generator().manual_seed(seed)
    xy = torch.rand(num, 2, generator=g) * torch.tensor([width, height]) * 0.8
    wh = torch.rand(num, 2, generator=g) * torch.tensor([width, height]) * 0.2 + 8
    return torch.cat([xy, torch.minimum(xy + wh, torch.tensor([width, height]) - 1.)],
                     dim=1)


def detector_forward(model: nn.Module, x: torch.Tensor, num_proposals: int = 1000,
                     num_mask_rois: int = 100):
    """A shape-only inference pass of an mmdet detector, the way mmdet 2.x's
    ``forward_dummy`` (used by the paper's FLOPs tool) ran it.

    Single-stage: backbone, neck, ``bbox_head``. Two-stage: backbone, neck, RPN head, then
    every RoI-head stage on ``num_proposals`` fixed random boxes (no NMS, so the count
    does not depend on the weights) and every mask stage on the first ``num_mask_rois``.
    """
    feats = model.extract_feat(x)
    if not hasattr(model, 'roi_head'):
        return model.bbox_head(feats)
    outs = [model.rpn_head(feats)]
    h, w = x.shape[-2:]
    boxes = random_proposals(num_proposals, h, w).to(x)
    rois = torch.cat([boxes.new_zeros(num_proposals, 1), boxes], dim=1)
    roi_head = model.roi_head
    num_stages = getattr(roi_head, 'num_stages', None)
    stages = range(num_stages) if num_stages is not None else [None]

    def pick(attr, i):
        mod = getattr(roi_head, attr)
        return mod if i is None else mod[i]

    for i in stages:
        if getattr(roi_head, 'with_bbox', False):
            extractor = pick('bbox_roi_extractor', i)
            roi_feats = extractor(feats[:extractor.num_inputs], rois)
            if getattr(roi_head, 'with_shared_head', False):
                roi_feats = roi_head.shared_head(roi_feats)
            outs.append(pick('bbox_head', i)(roi_feats))
    if getattr(roi_head, 'with_mask', False):
        mask_rois = rois[:num_mask_rois]
        for i in stages:
            if getattr(roi_head, 'share_roi_extractor', False):
                extractor = pick('bbox_roi_extractor', i)
            else:
                extractor = pick('mask_roi_extractor', i)
            mask_feats = extractor(feats[:extractor.num_inputs], mask_rois)
            if getattr(roi_head, 'with_shared_head', False):
                mask_feats = roi_head.shared_head(mask_feats)
            outs.append(pick('mask_head', i)(mask_feats))
    return outs


# --------------------------------------------------------------------------- building
def _strip_pretrained(cfg) -> None:
    """Drop every ``init_cfg`` (pretrained weights are not needed to count)."""
    if isinstance(cfg, dict):
        if 'init_cfg' in cfg:
            cfg['init_cfg'] = None
        for v in cfg.values():
            _strip_pretrained(v)
    elif isinstance(cfg, (list, tuple)):
        for v in cfg:
            _strip_pretrained(v)


def is_replknet_cfg(backbone_cfg) -> bool:
    return 'RepLKNet' in str(backbone_cfg.get('type', ''))


def build_from_config(config, backbone_only: bool = False,
                      backbone_overrides: Optional[dict] = None
                      ) -> Tuple[nn.Module, str]:
    """Build the segmentor / detector of an mmseg or mmdet config (a file or a Config),
    or only its ``model.backbone``, in eval mode.

    Pretrained ``init_cfg`` entries are removed and weights are not initialized;
    SyncBN is reverted to BN. A RepLKNet backbone is built with gradient
    checkpointing off; ``backbone_overrides`` update the backbone's settings.

    Returns:
        (model, task) with task 'seg', 'det' or (``backbone_only``) 'backbone'.
    """
    from mmengine.config import Config
    from mmengine.model import revert_sync_batchnorm
    from mmengine.registry import DefaultScope
    cfg = config if isinstance(config, Config) else Config.fromfile(config)
    model_cfg = copy.deepcopy(cfg.model)
    scope = cfg.get('default_scope') or (
        'mmdet' if 'roi_head' in model_cfg or 'bbox_head' in model_cfg else 'mmseg')
    if scope not in ('mmseg', 'mmdet'):
        raise ConfigError(f'unsupported default_scope {scope!r} (mmseg or mmdet)')
    _strip_pretrained(model_cfg)
    model_cfg.pop('pretrained', None)
    backbone = model_cfg.get('backbone', {})
    if is_replknet_cfg(backbone):
        backbone['with_cp'] = False
    backbone.update(backbone_overrides or {})
    registry = importlib.import_module(f'{scope}.registry').MODELS
    with DefaultScope.overwrite_default_scope(scope):
        model = registry.build(backbone if backbone_only else model_cfg)
    model = revert_sync_batchnorm(model).eval()
    if backbone_only:
        return model, 'backbone'
    return model, 'seg' if scope == 'mmseg' else 'det'


# --------------------------------------------------------------------------- reports
def complexity_report(model: nn.Module, task: str, input_shape: Sequence[int],
                      forms: Sequence[str] = ('train', 'deploy'),
                      backbone_name: str = 'backbone') -> List[dict]:
    """Params and MACs of the whole model and of its backbone, per form.

    Args:
        model: a classifier / backbone (task 'cls' or 'backbone'), an mmseg segmentor
            ('seg') or an mmdet detector ('det').
        input_shape: (C, H, W) of one image.
        forms: 'train' (as built) and/or 'deploy' (after ``switch_to_deploy``; the
            'deploy' row is computed after the 'train' one, the model is modified).

    Returns:
        A list of dicts (form, part, params, flops, flops_by_op, num_bn).
    """
    x = torch.randn(1, *input_shape)
    if task == 'seg':
        wrapped = TensorForward(model, segmentor_forward)
    elif task == 'det':
        wrapped = TensorForward(model, detector_forward)
    elif task in ('cls', 'backbone'):
        wrapped = TensorForward(model, lambda m, t: m(t))
    else:
        raise ValueError(f'unknown task {task!r}')
    rows = []
    for form in forms:
        if form == 'deploy':
            switch_to_deploy(model)
        elif form != 'train':
            raise ValueError(f'unknown form {form!r}')
        flops = count_flops(wrapped, x)
        parts = [('whole', 'model')]
        if task != 'backbone' and hasattr(model, backbone_name):
            parts.append(('backbone', f'model.{backbone_name}'))
        for part, name in parts:
            module = wrapped.get_submodule(name)
            params = count_params(module)
            if part == 'whole' and task == 'seg':
                # the auxiliary head is part of the model but not of inference
                rows.append(dict(
                    form=form, part='whole (+aux head)', params=params,
                    flops=flops.total(name), flops_by_op=flops.by_operator(name),
                    num_bn=count_batchnorms(module)))
                aux = getattr(model, 'auxiliary_head', None)
                if aux is not None:
                    params -= count_params(aux)
            rows.append(dict(form=form, part=part, params=params,
                             flops=flops.total(name),
                             flops_by_op=flops.by_operator(name),
                             num_bn=count_batchnorms(module)))
    return rows


def format_report(rows: List[dict], title: str = '') -> str:
    lines = [title] if title else []
    header = f'{"form":<7}{"part":<20}{"params":>16}{"params(M)":>11}' \
             f'{"FLOPs(G, MACs)":>16}  BN  by operator (G)'
    lines += [header, '-' * len(header)]
    for r in rows:
        ops = ', '.join(f'{k} {v / 1e9:.2f}' for k, v in
                        sorted(r['flops_by_op'].items(), key=lambda kv: -kv[1]))
        lines.append(f'{r["form"]:<7}{r["part"]:<20}{r["params"]:>16,}'
                     f'{r["params"] / 1e6:>11.2f}{r["flops"] / 1e9:>16.2f}'
                     f'  {r["num_bn"]:<3} {ops}')
    return '\n'.join(lines)


__all__ = [
    'count_params', 'count_flops', 'conv2d_macs',
    'switch_to_deploy', 'count_batchnorms', 'TensorForward', 'segmentor_forward',
    'detector_forward', 'random_proposals', 'build_from_config', 'complexity_report',
    'format_report', 'FlopCount'
]
