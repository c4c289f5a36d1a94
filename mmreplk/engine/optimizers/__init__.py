"""Optimizer wrapper constructors and the config check of the host's layer decay."""
from .config_check import check_optimizer_constructor
from .layer_decay_optim_wrapper_constructor import \
    LayerDecayOptimizerConstructor

__all__ = ['LayerDecayOptimizerConstructor', 'check_optimizer_constructor']
