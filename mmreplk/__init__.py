"""mmreplk: RepLKNet large-kernel backbones for OpenMMLab 2.x.

Importing the package registers its modules lazily (``mmreplk.registry``) and the training
engine pieces (atomic checkpoint backend, runner checkpoints loadable with
``weights_only``). It never imports mmseg or mmdet.
"""
from . import engine  # noqa: F401
from .version import __version__

__all__ = ['__version__']
