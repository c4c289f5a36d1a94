"""Fast depthwise large-kernel convolution (the paper's first guideline)."""
from .dwconv import DepthwiseConv2d, depthwise_conv2d

__all__ = ['DepthwiseConv2d', 'depthwise_conv2d']
