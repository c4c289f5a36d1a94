"""The export form of a model: what a tracing exporter (ONNX) may record without baking in
anything that depends on the input size.

* The RepLKNet backbone is re-parameterized (``switch_to_deploy``) and every conv-BN pair of
  the heads folded (mmcv's ``fuse_conv_bn``): no BatchNorm is left.
* The depthwise convs run stock ``F.conv2d`` in NCHW (``impl='torch'``,
  ``channels_last=False``). A tracer records stock ``F.conv2d`` with the whole kernel on
  every path anyway (:func:`mmreplk.ops.dwconv.lowers_to_stock`); NCHW also keeps the
  backbone's layout conversions out of the graph.
* ``nn.AdaptiveAvgPool2d`` (UPerHead's pyramid pooling) becomes
  :class:`AdaptiveAvgPool2dExport`, the same average computed from the input's run-time
  size: ONNX has no adaptive pooling, and the exporter turns it into a fixed-size pooling
  (or refuses) from the traced size.

Everything else size-dependent in mmseg's UPerHead (the resizes to the previous level's
size) reads the size from the tensors, which the tracer records as run-time values.
"""
import copy
from typing import Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F

from mmreplk.analysis.complexity import count_batchnorms
from mmreplk.errors import ConfigError

__all__ = ['AdaptiveAvgPool2dExport', 'prepare_for_export', 'set_dwconv_path',
           'SegmentorExport', 'BackboneExport', 'MMSegInference']


def _bin_matrix(size, bins: int, like: torch.Tensor) -> torch.Tensor:
    """(bins, size) averaging weights of adaptive pooling along one axis: bin i averages
    [floor(i * size / bins), ceil((i + 1) * size / bins)), PyTorch's bins."""
    i = torch.arange(bins, device=like.device)
    start = torch.div(i * size, bins, rounding_mode='floor')
    end = torch.div((i + 1) * size + bins - 1, bins, rounding_mode='floor')
    idx = torch.arange(size, device=like.device)
    inside = (idx[None, :] >= start[:, None]) & (idx[None, :] < end[:, None])
    weights = inside.to(like.dtype)
    return weights / weights.sum(1, keepdim=True)


class AdaptiveAvgPool2dExport(nn.Module):
    """``nn.AdaptiveAvgPool2d(output_size)`` as two products with averaging matrices built
    from the input's size at run time (equal up to float rounding)."""

    def __init__(self, output_size) -> None:
        super().__init__()
        size = (output_size, output_size) if isinstance(output_size, int) else \
            tuple(output_size)
        if len(size) != 2 or not all(isinstance(s, int) and s > 0 for s in size):
            raise ConfigError(f'cannot export AdaptiveAvgPool2d({output_size!r}): '
                              'only positive int output sizes')
        self.output_size = size

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        rows = _bin_matrix(x.shape[-2], self.output_size[0], x)
        cols = _bin_matrix(x.shape[-1], self.output_size[1], x)
        return torch.matmul(torch.matmul(rows, x), cols.transpose(0, 1))


def _replace_adaptive_pools(module: nn.Module) -> None:
    for name, child in module.named_children():
        if isinstance(child, nn.AdaptiveAvgPool2d):
            setattr(module, name, AdaptiveAvgPool2dExport(child.output_size))
        else:
            _replace_adaptive_pools(child)


def set_dwconv_path(model: nn.Module, stock: bool) -> None:
    """Route every RepLKNet backbone of ``model`` through stock ``F.conv2d`` in NCHW
    (``stock``), or through mmreplk's default path (``dwconv_impl`` from
    ``$MMREPLK_DWCONV`` or 'auto', channels_last on CPU)."""
    from mmreplk.models import RepLKNet
    from mmreplk.ops import DepthwiseConv2d
    for m in model.modules():
        if isinstance(m, RepLKNet):
            m.channels_last = False if stock else None
        elif isinstance(m, DepthwiseConv2d):
            m.impl = 'torch' if stock else None


def prepare_for_export(model: nn.Module) -> nn.Module:
    """The export form of ``model`` (a copy, eval mode): re-parameterized, no BatchNorm,
    stock depthwise convs, run-time-size adaptive pooling (see the module docstring)."""
    from mmcv.cnn import fuse_conv_bn
    from mmreplk.models import RepLKNet
    model = copy.deepcopy(model).eval()
    backbones = [m for m in model.modules() if isinstance(m, RepLKNet)]
    if not backbones:
        raise ConfigError('the model has no RepLKNet backbone to export')
    for backbone in backbones:
        backbone.switch_to_deploy()
    fuse_conv_bn(model)
    left = count_batchnorms(model)
    if left:
        raise ConfigError(f'{left} BatchNorm layer(s) do not follow a convolution and '
                          'cannot be folded for export')
    set_dwconv_path(model, stock=True)
    _replace_adaptive_pools(model)
    return model


class SegmentorExport(nn.Module):
    """An mmseg ``EncoderDecoder`` from image to logits: the data preprocessor's channel
    order and normalization, backbone (+ neck), decode head, bilinear resize to the input
    size (as mmseg's ``predict``). Input (N, 3, H, W) float, the image as loaded (BGR,
    0-255, for configs that set ``bgr_to_rgb``); output (N, classes, H, W) logits. The
    auxiliary head is training-only and left out."""

    def __init__(self, segmentor: nn.Module) -> None:
        super().__init__()
        self.segmentor = segmentor
        pre = segmentor.data_preprocessor
        self.bgr_to_rgb = bool(getattr(pre, 'channel_conversion', False))
        normalize = bool(getattr(pre, '_enable_normalize', False))
        self.register_buffer('mean', pre.mean.view(1, -1, 1, 1).clone() if normalize
                             else torch.zeros(1, 3, 1, 1))
        self.register_buffer('std', pre.std.view(1, -1, 1, 1).clone() if normalize
                             else torch.ones(1, 3, 1, 1))

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        x = image.flip(1) if self.bgr_to_rgb else image
        x = (x - self.mean) / self.std
        head = self.segmentor.decode_head
        logits = head(self.segmentor.extract_feat(x))
        return F.interpolate(logits, size=image.shape[2:], mode='bilinear',
                             align_corners=head.align_corners)


class BackboneExport(nn.Module):
    """A RepLKNet backbone from a normalized image (N, 3, H, W) to its feature maps."""

    def __init__(self, backbone: nn.Module) -> None:
        super().__init__()
        self.backbone = backbone

    def forward(self, x: torch.Tensor) -> Tuple[torch.Tensor, ...]:
        return tuple(self.backbone(x))


class MMSegInference(nn.Module):
    """An mmseg segmentor from image to logits through mmseg's own inference code (its
    data preprocessor and ``encode_decode``, whole image): the reference an export of
    :class:`SegmentorExport` is checked against."""

    def __init__(self, segmentor: nn.Module) -> None:
        super().__init__()
        self.segmentor = segmentor

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        data = self.segmentor.data_preprocessor({'inputs': list(image)}, False)
        size = tuple(image.shape[2:])
        metas = [dict(img_shape=size, ori_shape=size, pad_shape=size)] * len(image)
        return self.segmentor.encode_decode(data['inputs'], metas)
