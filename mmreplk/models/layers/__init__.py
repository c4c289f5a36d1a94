from .conv_bn import ConvBN
from .replk_block import ConvFFN, RepLKBlock, ReparamLargeKernelConv

__all__ = ['ConvBN', 'ConvFFN', 'RepLKBlock', 'ReparamLargeKernelConv']
