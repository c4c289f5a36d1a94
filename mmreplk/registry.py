"""The plugin's child registries.

Each registry has the matching mmengine root registry as parent and the scope ``mmreplk``,
so any host scope (mmseg, mmdet, mmpretrain) can build ``type='mmreplk.<Name>'``; mmengine
imports ``mmreplk.registry`` by itself when it meets that scope, and ``locations`` makes the
registry import the modules that register into it.
"""
from mmengine.registry import HOOKS as MMENGINE_HOOKS
from mmengine.registry import MODEL_WRAPPERS as MMENGINE_MODEL_WRAPPERS
from mmengine.registry import MODELS as MMENGINE_MODELS
from mmengine.registry import \
    OPTIM_WRAPPER_CONSTRUCTORS as MMENGINE_OPTIM_WRAPPER_CONSTRUCTORS
from mmengine.registry import Registry

MODELS = Registry(
    'model', parent=MMENGINE_MODELS, scope='mmreplk',
    locations=['mmreplk.models'])
OPTIM_WRAPPER_CONSTRUCTORS = Registry(
    'optimizer wrapper constructor',
    parent=MMENGINE_OPTIM_WRAPPER_CONSTRUCTORS, scope='mmreplk',
    locations=['mmreplk.engine'])
MODEL_WRAPPERS = Registry(
    'model_wrapper', parent=MMENGINE_MODEL_WRAPPERS, scope='mmreplk',
    locations=['mmreplk.engine'])
HOOKS = Registry(
    'hook', parent=MMENGINE_HOOKS, scope='mmreplk', locations=['mmreplk.engine'])
