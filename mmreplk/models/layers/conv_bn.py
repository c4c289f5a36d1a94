"""Conv + norm (+ ReLU) with the official module names (``conv``, ``bn``, ``nonlinear``)."""
from typing import Type

import torch.nn as nn
from mmcv.cnn import build_norm_layer


class ConvBN(nn.Sequential):
    """A bias-free conv followed by a norm layer and, with ``act=True``, a ReLU.

    Padding is ``kernel_size // 2``. In deploy form the norm is folded away and the conv
    carries a bias, so the module is just ``conv`` (+ ``nonlinear``).

    mmcv's ``ConvModule`` is not used on purpose: it re-initializes the conv with Kaiming
    init (the official model keeps PyTorch's default init) and names the norm after its type.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int,
                 stride: int = 1, groups: int = 1, norm_cfg: dict = dict(type='BN'),
                 act: bool = False, deploy: bool = False,
                 conv_layer: Type[nn.Conv2d] = nn.Conv2d, **conv_kwargs) -> None:
        super().__init__()
        self.add_module('conv', conv_layer(
            in_channels, out_channels, kernel_size, stride=stride,
            padding=kernel_size // 2, groups=groups, bias=deploy, **conv_kwargs))
        if not deploy:
            self.add_module('bn', build_norm_layer(norm_cfg, out_channels)[1])
        if act:
            self.add_module('nonlinear', nn.ReLU())
