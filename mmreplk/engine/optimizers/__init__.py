"""Optimizer wrapper constructors."""
from .layer_decay_optim_wrapper_constructor import (
    LayerDecayOptimizerConstructor, replknet_group_id)

__all__ = ['LayerDecayOptimizerConstructor', 'replknet_group_id']
