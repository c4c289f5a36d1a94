"""Config mistakes end in one line before anything is built (mmreplk.apis.validate through
mmreplk.apis.load_run_config), and a new training length carries the schedule along."""
import argparse
import copy
import functools

import pytest
from mmengine.config import Config

from mmreplk.errors import ConfigError

from mmreplk import apis as common
from mmreplk.apis import validate
ADE = 'configs/upernet_replk31b_ade20k.py'
CASCADE = 'configs/cascade_mask_rcnn_replk31b_coco.py'


@functools.lru_cache()
def _file(path: str) -> Config:
    return Config.fromfile(path)


def _load(path, options):
    """What load_config does after reading the file (read once per test session)."""
    cfg = copy.deepcopy(_file(path))
    length = validate.training_length(cfg)
    if options:
        cfg.merge_from_dict(options)
    validate.fit_schedule(cfg, length, options)
    validate.check_config_keys(cfg)
    return cfg


@pytest.mark.parametrize('path, key, message', [
    (ADE, 'model.backbon', 'model.backbon is not an argument of EncoderDecoder (did you '
     'mean model.backbone?)'),
    (ADE, 'train_cfg.max_iter', 'train_cfg.max_iter is not an argument of '
     'IterBasedTrainLoop (did you mean train_cfg.max_iters?)'),
    (ADE, 'optim_wrapper.optimizer.lrr', 'optim_wrapper.optimizer.lrr is not an argument '
     'of AdamW (did you mean optim_wrapper.optimizer.lr?)'),
    (ADE, 'model.decode_head.num_clases', 'model.decode_head.num_clases is not an '
     'argument of UPerHead (did you mean model.decode_head.num_classes?)'),
    (ADE, 'default_hooks.checkpoint.intervl', 'default_hooks.checkpoint.intervl is not '
     'an argument of SafeCheckpointHook (did you mean default_hooks.checkpoint.interval?)'),
    (ADE, 'train_dataloader.dataset.pipeline.2.scalee', 'pipeline.2.scalee is not an '
     'argument of RandomResize (did you mean train_dataloader.dataset.pipeline.2.scale?)'),
    (ADE, 'model.backbone.kernel_szie', 'model.backbone.kernel_szie is not an argument of '
     'RepLKNet (it takes: arch, in_channels,'),
    (CASCADE, 'model.roi_head.bbox_head.0.num_clases', 'model.roi_head.bbox_head.0.'
     'num_clases is not an argument of ConvFCBBoxHead (did you mean'),
])
def test_misspelt_keys_name_path_class_and_suggestion(path, key, message):
    with pytest.raises(ConfigError) as info:
        _load(path, {key: 3})
    assert str(info.value).startswith('config error: ') and message in str(info.value)


def test_unknown_type_suggests_the_registered_one():
    with pytest.raises(ConfigError, match="model.decode_head.type 'UPerHaed' is not "
                       "registered \\(did you mean 'UPerHead'\\?\\)"):
        _load(ADE, {'model.decode_head.type': 'UPerHaed'})


def test_shipped_configs_pass():
    for path in (ADE, CASCADE, 'configs/demo_upernet_replk-tiny_synthetic.py'):
        _load(path, None)


def test_a_top_level_variable_in_cfg_options_is_warned():
    cfg = _load(ADE, {'max_iters': 4})
    assert cfg.train_cfg.max_iters == 160000
    warnings = validate.check_cfg_options(cfg, {'max_iters': 4})
    assert warnings == ["warning: --cfg-options max_iters: 'max_iters' is a variable of "
                        'the config file, read when the file was loaded; setting it here '
                        'changes nothing. Did you mean train_cfg.max_iters?']


def test_a_new_length_rescales_the_schedule():
    """The example of train.py --help: warm-up and poly decay follow max_iters (they
    stayed at 1600 / 160000, so the whole run was warm-up)."""
    cfg = common.load_run_config(ADE, {'train_cfg.max_iters': 1000}, '/tmp/x', 'none')
    assert [(s.type, s.begin, s.end) for s in cfg.param_scheduler] == [
        ('LinearLR', 0, 10), ('PolyLR', 0, 1000)]
    cfg = _load(CASCADE, {'train_cfg.max_epochs': 12})
    warmup, steps = cfg.param_scheduler
    assert (warmup.end, steps.end, steps.milestones) == (501, 12, [9, 11])  # iters kept
    assert [s.end for s in _load(ADE, None).param_scheduler] == [1601, 160001]


def test_a_schedule_that_does_not_fit_is_an_error():
    with pytest.raises(ConfigError, match=r'param_scheduler.1 \(PolyLR\) runs from 0 to '
                       '170000 iters but training stops after 160000'):
        _load(ADE, {'param_scheduler.1.end': 170000})


def test_unparsable_cfg_options_are_a_usage_error(capsys):
    parser = argparse.ArgumentParser(prog='train.py')
    common.add_cfg_options(parser)
    for bad in ('model.backbone.arch.layers=[1,2', 'no_equals_sign'):
        with pytest.raises(SystemExit) as info:
            parser.parse_args(['--cfg-options', bad])
        assert info.value.code == 2
        assert f"--cfg-options {bad!r} does not parse: expected KEY=VALUE" in \
            capsys.readouterr().err
