"""Depthwise convolution entry points (placeholder: stock PyTorch path only).

The fast GPU (Triton) and CPU paths plug in behind :func:`depthwise_conv2d`.
"""
from typing import Optional

import torch
import torch.nn as nn
import torch.nn.functional as F


def depthwise_conv2d(x: torch.Tensor, weight: torch.Tensor,
                     bias: Optional[torch.Tensor] = None, *,
                     impl: Optional[str] = None) -> torch.Tensor:
    """Stride-1 'same' depthwise convolution of ``x`` (N, C, H, W) by ``weight`` (C, 1, Kh, Kw)."""
    kh, kw = weight.shape[-2:]
    return F.conv2d(x, weight, bias, 1, (kh // 2, kw // 2), 1, weight.shape[0])


class DepthwiseConv2d(nn.Conv2d):
    """``nn.Conv2d`` with the fast depthwise path; state-dict compatible with ``nn.Conv2d``."""

    def __init__(self, *args, impl: Optional[str] = None, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.impl = impl

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return depthwise_conv2d(x, self.weight, self.bias, impl=self.impl)
