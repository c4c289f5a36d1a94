"""Every value reaching the runner has the type and range its consumer needs: generated
over config keys x wrong values (types from the builders' annotations, ranges from
mmreplk.apis.validate's table), each one ConfigError naming the key, before anything
is built; the right values pass."""
import copy

import pytest
from conftest import LEARN_CONFIG, ROOT

from mmreplk.apis import check_config, load_config
from mmreplk.apis.validate import fit_schedule
from mmreplk.errors import ConfigError

CONFIG = str(ROOT / LEARN_CONFIG)

#: key -> (values that must be refused, a value that must pass)
VALUES = {
    'train_dataloader.batch_size': ([0, -1, '2', 2.5, True], 3),
    'train_dataloader.num_workers': ([-1, 1.5], 0),
    'optim_wrapper.optimizer.lr': (['0.01', -1.0, None], 1e-3),
    'optim_wrapper.optimizer.weight_decay': ([-0.1, 'none'], 0.0),
    'train_cfg.max_iters': ([3.5, 0, '100'], 8),
    'train_cfg.val_interval': ([0, 2.5], 4),
    'model.backbone.dwconv_impl': (['fast', 3], 'torch'),
    'model.backbone.drop_path_rate': (['0.1'], 0.2),
    'model.data_preprocessor.size': ([(-1, 64), (0, 0)], (64, 64)),
    'default_hooks.checkpoint.interval': ([0, 'often'], 4),
    'model.decode_head.num_classes': (['150', 1.5], 150),
}
CASES = [(key, value, True) for key, (bad, _) in VALUES.items() for value in bad] + \
    [(key, good, False) for key, (_, good) in VALUES.items()]


@pytest.fixture(scope='module')
def demo():
    return load_config(CONFIG)


def _with(cfg, key, value):
    cfg = copy.deepcopy(cfg)
    cfg.merge_from_dict({key: value})
    return cfg


@pytest.mark.parametrize('key, value, refused', CASES,
                         ids=[f'{k}={v!r}' for k, v, _ in CASES])
def test_values_are_checked_before_anything_is_built(demo, key, value, refused):
    cfg = _with(demo, key, value)
    section = (key.split('.')[0], )
    if not refused:
        check_config(cfg, section)
        return
    with pytest.raises(ConfigError, match=r'config error: ' + key.replace('.', r'\.')):
        check_config(cfg, section)


def test_a_negative_crop_in_the_pipeline(demo):
    pipeline = demo.train_dataloader.dataset.pipeline
    index = next(i for i, t in enumerate(pipeline) if 'crop_size' in t)
    cfg = copy.deepcopy(demo)
    cfg.train_dataloader.dataset.pipeline[index].crop_size = (-64, 64)
    key = f'train_dataloader.dataset.pipeline.{index}.crop_size'
    with pytest.raises(ConfigError, match=key.replace('.', r'\.') + r'\.0=-64 must be'):
        check_config(cfg, ('train_dataloader', ))


def test_a_schedule_that_ends_before_training_is_refused(demo):
    """--cfg-options param_scheduler.1.end=3 train_cfg.max_iters=12: PolyLR ends at 3
    and the last 9 iterations would train at lr 0."""
    poly = next(i for i, s in enumerate(demo.param_scheduler) if s.type == 'PolyLR')
    options = {f'param_scheduler.{poly}.end': 3, 'train_cfg.max_iters': 12,
               f'param_scheduler.{poly}.begin': 0, 'param_scheduler.0.end': 1}
    cfg = copy.deepcopy(demo)
    cfg.merge_from_dict(options)
    with pytest.raises(ConfigError, match=rf'param_scheduler\.{poly} \(PolyLR\) brings the '
                       r'lr to 0 at 3 iters but training runs to 12: the last 9 iters'):
        fit_schedule(cfg, demo.train_cfg.max_iters, options)
    options[f'param_scheduler.{poly}.end'] = 12
    cfg.merge_from_dict(options)
    fit_schedule(cfg, demo.train_cfg.max_iters, options)


CHANNELS = {  # key -> a value that does not chain with the demo's tiny RepLKNet
    'model.decode_head.in_channels': [32, 64, 96, 96],
    'model.auxiliary_head.in_channels': 128,
    'model.backbone.arch.channels': [32, 64, 128, 128],
}


@pytest.mark.parametrize('key', sorted(CHANNELS))
def test_channels_that_do_not_chain_are_refused(demo, key):
    """An own config without auxiliary_head.in_channels ends at the first iteration in a
    shape error deep inside torch; every in_channels is checked against the backbone."""
    with pytest.raises(ConfigError, match=r'in_channels=.* but the RepLKNet backbone gives'):
        check_config(_with(demo, key, CHANNELS[key]), ('model', ))
    check_config(demo, ('model', ))


def test_a_host_layer_decay_constructor_names_the_fix(demo):
    """mmseg's ConvNeXt layer decay on a RepLKNet ends in a bare NotImplementedError when
    the optimizer is built; the config check names mmreplk's constructor instead."""
    cfg = _with(demo, 'optim_wrapper.constructor', 'LearningRateDecayOptimizerConstructor')
    with pytest.raises(ConfigError, match="set optim_wrapper.constructor="
                       "'mmreplk.LayerDecayOptimizerConstructor'"):
        check_config(cfg, ('optim_wrapper', ))
    check_config(_with(demo, 'optim_wrapper.constructor',
                       'mmreplk.LayerDecayOptimizerConstructor'), ('optim_wrapper', ))
