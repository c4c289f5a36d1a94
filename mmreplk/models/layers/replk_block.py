"""RepLKNet's building blocks: the re-parameterizable large-kernel conv, the RepLK block and
the ConvFFN block (docs/design.md, "Architecture")."""
from functools import partial
from typing import Optional

import torch
import torch.nn as nn
from mmcv.cnn import build_norm_layer
from mmcv.cnn.bricks.drop import DropPath

from mmreplk.ops import DepthwiseConv2d
from .conv_bn import ConvBN


def _drop_path(rate: float) -> nn.Module:
    return DropPath(rate) if rate > 0 else nn.Identity()


class ReparamLargeKernelConv(nn.Module):
    """Depthwise KxK conv_bn plus a parallel depthwise small-kernel conv_bn, summed.

    In deploy form both branches are one biased depthwise conv, ``lkb_reparam``. Every
    depthwise conv goes through :class:`mmreplk.ops.DepthwiseConv2d` (``dwconv_impl``).
    """

    def __init__(self, channels: int, kernel_size: int, small_kernel: Optional[int],
                 norm_cfg: dict, deploy: bool = False,
                 dwconv_impl: Optional[str] = None) -> None:
        super().__init__()
        dwconv = partial(DepthwiseConv2d, impl=dwconv_impl)
        if deploy:
            self.lkb_reparam = dwconv(channels, channels, kernel_size,
                                      padding=kernel_size // 2, groups=channels,
                                      bias=True)
            return
        self.lkb_origin = ConvBN(channels, channels, kernel_size, groups=channels,
                                 norm_cfg=norm_cfg, conv_layer=dwconv)
        if small_kernel is not None:
            self.small_conv = ConvBN(channels, channels, small_kernel,
                                     groups=channels, norm_cfg=norm_cfg,
                                     conv_layer=dwconv)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if hasattr(self, 'lkb_reparam'):
            return self.lkb_reparam(x)
        out = self.lkb_origin(x)
        if hasattr(self, 'small_conv'):
            out = out + self.small_conv(x)
        return out


class RepLKBlock(nn.Module):
    """``x + drop_path(pw2(relu(LK(pw1(prelkb_bn(x))))))``."""

    def __init__(self, channels: int, dw_channels: int, kernel_size: int,
                 small_kernel: Optional[int], drop_path: float = 0.,
                 norm_cfg: dict = dict(type='BN'), deploy: bool = False,
                 dwconv_impl: Optional[str] = None) -> None:
        super().__init__()
        self.prelkb_bn = (nn.Identity() if deploy else
                          build_norm_layer(norm_cfg, channels)[1])
        self.pw1 = ConvBN(channels, dw_channels, 1, norm_cfg=norm_cfg, act=True,
                          deploy=deploy)
        self.large_kernel = ReparamLargeKernelConv(
            dw_channels, kernel_size, small_kernel, norm_cfg, deploy, dwconv_impl)
        self.lk_nonlinear = nn.ReLU()
        self.pw2 = ConvBN(dw_channels, channels, 1, norm_cfg=norm_cfg,
                          deploy=deploy)
        self.drop_path = _drop_path(drop_path)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.pw1(self.prelkb_bn(x))
        out = self.pw2(self.lk_nonlinear(self.large_kernel(out)))
        return x + self.drop_path(out)


class ConvFFN(nn.Module):
    """``x + drop_path(pw2(gelu(pw1(preffn_bn(x)))))`` with exact (erf) GELU."""

    def __init__(self, channels: int, internal_channels: int, drop_path: float = 0.,
                 norm_cfg: dict = dict(type='BN'), deploy: bool = False) -> None:
        super().__init__()
        self.preffn_bn = (nn.Identity() if deploy else
                          build_norm_layer(norm_cfg, channels)[1])
        self.pw1 = ConvBN(channels, internal_channels, 1, norm_cfg=norm_cfg,
                          deploy=deploy)
        self.nonlinear = nn.GELU()
        self.pw2 = ConvBN(internal_channels, channels, 1, norm_cfg=norm_cfg,
                          deploy=deploy)
        self.drop_path = _drop_path(drop_path)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.pw2(self.nonlinear(self.pw1(self.preffn_bn(x))))
        return x + self.drop_path(out)
