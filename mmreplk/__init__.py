"""mmreplk: RepLKNet large-kernel backbones for OpenMMLab 2.x.

Importing the package (or ``mmreplk.models``, ``mmreplk.ops``, ...) changes nothing
process-wide: no torch or mmengine setting, no file backend. The training engine
(``mmreplk.engine``: atomic checkpoint backend, runner checkpoints loadable with
``weights_only``) is switched on by importing it, as the configs and tools do
(docs/design.md, "Imports"). It never imports mmseg or mmdet.
"""
from .version import __version__

__all__ = ['__version__']
