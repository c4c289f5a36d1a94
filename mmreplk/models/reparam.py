"""Structural re-parameterization of RepLKNet state dicts (pure tensor functions).

All folding works on state dicts in the official key format (docs/design.md, "Checkpoint
formats") and is exact in eval mode:

* every ``P.conv`` + ``P.bn`` pair becomes a biased ``P.conv``;
* ``P.lkb_origin`` + ``P.small_conv`` become one biased depthwise ``P.lkb_reparam``;
* each pre-BN (``prelkb_bn``, ``preffn_bn``) folds into the following 1x1 ``pw1.conv``;
* intermediate output norms (``stages.i.norm``, XL) become a per-channel affine stored as a
  depthwise 1x1 conv with bias;
* the classifier's ``norm`` folds into ``head`` (global average pooling is linear).

The result holds no BatchNorm tensors at all. Arithmetic is done in float64.
"""
from typing import Dict, Optional, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor

from .arch import STAGE_NORM

StateDict = Dict[str, Tensor]
BN_SUFFIXES = ('weight', 'bias', 'running_mean', 'running_var',
               'num_batches_tracked')


def bn_scale_shift(sd: StateDict, prefix: str,
                   eps: float = 1e-5) -> Tuple[Tensor, Tensor]:
    """Return ``(scale, shift)`` so that ``bn(x) == scale * x + shift`` in eval mode."""
    mean = sd[prefix + 'running_mean'].double()
    var = sd[prefix + 'running_var'].double()
    gamma = sd.get(prefix + 'weight')
    beta = sd.get(prefix + 'bias')
    gamma = torch.ones_like(mean) if gamma is None else gamma.double()
    beta = torch.zeros_like(mean) if beta is None else beta.double()
    scale = gamma / torch.sqrt(var + eps)
    return scale, beta - mean * scale


def fuse_conv_bn(weight: Tensor, bias: Optional[Tensor], scale: Tensor,
                 shift: Tensor) -> Tuple[Tensor, Tensor]:
    """Fold a following per-output-channel affine (a BN) into a conv's weight and bias."""
    w = weight.double() * scale.reshape(-1, *([1] * (weight.dim() - 1)))
    b = shift if bias is None else bias.double() * scale + shift
    return w, b


def fold_affine_into_next(weight: Tensor, bias: Optional[Tensor],
                          scale: Tensor, shift: Tensor) -> Tuple[Tensor, Tensor]:
    """Fold a preceding per-input-channel affine into a 1x1 conv or a linear layer.

    ``W @ (scale * x + shift) + b == (W * scale) @ x + (W @ shift + b)``; exact because the
    layer has no spatial extent (no padding effects).
    """
    w2d = weight.double().reshape(weight.shape[0], weight.shape[1])
    b = w2d @ shift
    if bias is not None:
        b = b + bias.double()
    return (weight.double() * scale.reshape(1, -1, *([1] * (weight.dim() - 2))), b)


def _pop_bn(sd: StateDict, prefix: str) -> None:
    for s in BN_SUFFIXES:
        sd.pop(prefix + s, None)


def _set(sd: StateDict, key: str, value: Tensor, like: Tensor) -> None:
    sd[key] = value.to(like.dtype)


def reparameterize_state_dict(state_dict: StateDict,
                              eps: float = 1e-5) -> StateDict:
    """Convert a training-form (or official merged) state dict to the BN-free deploy form."""
    sd = dict(state_dict)

    # 1. large kernel + small kernel (+ their BNs) -> lkb_reparam
    for key in [k for k in sd if k.endswith('.lkb_origin.conv.weight')]:
        p = key[:-len('lkb_origin.conv.weight')]
        big = sd.pop(key)
        w, b = fuse_conv_bn(big, sd.pop(p + 'lkb_origin.conv.bias', None),
                            *bn_scale_shift(sd, p + 'lkb_origin.bn.', eps))
        _pop_bn(sd, p + 'lkb_origin.bn.')
        if p + 'small_conv.conv.weight' in sd:
            small = sd.pop(p + 'small_conv.conv.weight')
            ws, bs = fuse_conv_bn(small, sd.pop(p + 'small_conv.conv.bias', None),
                                  *bn_scale_shift(sd, p + 'small_conv.bn.', eps))
            _pop_bn(sd, p + 'small_conv.bn.')
            ph = (w.shape[-2] - ws.shape[-2]) // 2
            pw = (w.shape[-1] - ws.shape[-1]) // 2
            w = w + F.pad(ws, (pw, pw, ph, ph))
            b = b + bs
        _set(sd, p + 'lkb_reparam.weight', w, big)
        _set(sd, p + 'lkb_reparam.bias', b, big)

    # 2. every conv_bn pair -> biased conv
    for key in [k for k in sd if k.endswith('.bn.running_mean')]:
        p = key[:-len('bn.running_mean')]
        if p + 'conv.weight' not in sd:
            continue
        weight = sd[p + 'conv.weight']
        w, b = fuse_conv_bn(weight, sd.get(p + 'conv.bias'),
                            *bn_scale_shift(sd, p + 'bn.', eps))
        _pop_bn(sd, p + 'bn.')
        _set(sd, p + 'conv.weight', w, weight)
        _set(sd, p + 'conv.bias', b, weight)

    # 3. pre-BNs -> the following 1x1 conv
    for pre in ('prelkb_bn', 'preffn_bn'):
        for key in [k for k in sd if k.endswith(f'.{pre}.running_mean')]:
            p = key[:-len(f'{pre}.running_mean')]
            scale, shift = bn_scale_shift(sd, f'{p}{pre}.', eps)
            _pop_bn(sd, f'{p}{pre}.')
            weight = sd[p + 'pw1.conv.weight']
            w, b = fold_affine_into_next(weight, sd.get(p + 'pw1.conv.bias'),
                                         scale, shift)
            _set(sd, p + 'pw1.conv.weight', w, weight)
            _set(sd, p + 'pw1.conv.bias', b, weight)

    # 4. intermediate output norms (stages.i.norm) -> depthwise 1x1 affine conv
    for key in [k for k in sd if STAGE_NORM.match(k) and k.endswith('.running_mean')]:
        p = key[:-len('running_mean')]
        like = sd[key]
        scale, shift = bn_scale_shift(sd, p, eps)
        _pop_bn(sd, p)
        _set(sd, p + 'weight', scale.reshape(-1, 1, 1, 1), like)
        _set(sd, p + 'bias', shift, like)

    # 5. classifier: norm -> head (GAP commutes with a per-channel affine)
    if 'norm.running_mean' in sd and 'head.weight' in sd:
        scale, shift = bn_scale_shift(sd, 'norm.', eps)
        _pop_bn(sd, 'norm.')
        weight = sd['head.weight']
        w, b = fold_affine_into_next(weight, sd.get('head.bias'), scale, shift)
        _set(sd, 'head.weight', w, weight)
        _set(sd, 'head.bias', b, weight)
    return sd
