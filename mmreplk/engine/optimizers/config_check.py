"""A config check: the layer-decay constructor of the host toolbox meets a RepLKNet."""
from mmengine.config import Config

from mmreplk.errors import ConfigError

# The host constructors that group parameters by ConvNeXt / BEiT parameter names and raise a
# bare NotImplementedError for any other backbone: (scope, registered name).
HOST_LAYER_DECAY = {('mmseg', 'LearningRateDecayOptimizerConstructor'),
                    ('mmseg', 'LayerDecayOptimizerConstructor'),
                    ('mmdet', 'LearningRateDecayOptimizerConstructor')}


def check_optimizer_constructor(cfg: Config) -> None:
    """Raise :class:`ConfigError` when ``cfg.optim_wrapper.constructor`` is mmseg's or
    mmdet's ConvNeXt layer-decay constructor and the backbone is a RepLKNet: the message
    names the replacement, ``mmreplk.LayerDecayOptimizerConstructor``."""
    constructor = cfg.get('optim_wrapper', {}).get('constructor')
    backbone = cfg.get('model', {}).get('backbone', {}) or {}
    if not isinstance(constructor, str) or 'RepLKNet' not in str(backbone.get('type', '')):
        return
    scope, _, name = constructor.rpartition('.')
    if (scope or cfg.get('default_scope'), name) not in HOST_LAYER_DECAY:
        return
    raise ConfigError(
        f"optim_wrapper.constructor='{constructor}' is the {scope or cfg.default_scope} "
        'layer decay of ConvNeXt / BEiT backbones and cannot group a RepLKNet: set '
        "optim_wrapper.constructor='mmreplk.LayerDecayOptimizerConstructor' and "
        "paramwise_cfg=dict(_delete_=True, decay_rate=..., decay_type='layer_wise' or "
        "'stage_wise') (it has no num_layers: the backbone gives the depth)")
