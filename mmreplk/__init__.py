"""mmreplk: RepLKNet large-kernel backbones for OpenMMLab 2.x.

It never imports mmseg or mmdet.
"""
from .version import __version__

__all__ = ['__version__']
