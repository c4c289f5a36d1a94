"""mmreplk.apis in-process: the exit convention, config loading, the checks run
before a runner is built (each tested once end to end in test_e2e.py)."""
import argparse

import pytest
from conftest import ROOT, loader_options

from mmreplk.errors import (CheckpointError, CheckpointNotFoundError, ConfigError,
                            DataNotFoundError, MMReplkError)

from mmreplk import apis as common
ADE = str(ROOT / 'configs' / 'upernet_replk31b_ade20k.py')
COCO = str(ROOT / 'configs' / 'cascade_mask_rcnn_replk31b_coco.py')


def test_run_turns_user_mistakes_into_one_line_and_status_1(capsys):
    def mistake():
        raise DataNotFoundError('train data set not found: data/ade')

    with pytest.raises(SystemExit) as info:
        common.run(mistake)
    assert info.value.code == 1
    assert capsys.readouterr().err == 'error: train data set not found: data/ade\n'


@pytest.mark.parametrize('bug', [KeyError('decode_head'), ValueError('a bug'),
                                 FileNotFoundError('a bug')])
def test_run_keeps_the_traceback_of_anything_else(bug):
    def main():
        raise bug

    with pytest.raises(type(bug)):
        common.run(main)


def test_errors_keep_their_builtin_bases():
    assert issubclass(ConfigError, ValueError)
    assert issubclass(DataNotFoundError, FileNotFoundError)
    assert all(issubclass(e, MMReplkError) for e in (ConfigError, DataNotFoundError,
                                                     CheckpointNotFoundError))


def test_load_config_merges_cfg_options_and_finds_no_file():
    cfg = common.load_config(ADE, {'model.backbone.drop_path_rate': 0.1})
    assert cfg.model.backbone.drop_path_rate == 0.1
    with pytest.raises(ConfigError, match='config file not found: nowhere.py'):
        common.load_config('nowhere.py')


def test_load_run_config_work_dir_and_scope(tmp_path):
    cfg = common.load_run_config(ADE, None, None, 'none')
    assert cfg.work_dir == './work_dirs/upernet_replk31b_ade20k'
    assert common.load_run_config(ADE, None, 'w', 'pytorch').work_dir == 'w'
    other = tmp_path / 'cls.py'
    other.write_text("default_scope = 'mmpretrain'\nmodel = dict()\n")
    with pytest.raises(ConfigError, match="default_scope is 'mmpretrain'"):
        common.load_run_config(str(other), None, None, 'none')


def test_check_data_names_what_is_missing_and_how_to_get_it(ade20k_root, tmp_path):
    cfg = common.load_config(ADE, loader_options(ade20k_root))
    common.check_data(cfg, ('train', 'val'))
    cfg.train_dataloader.dataset.data_root = str(tmp_path / 'nowhere')
    with pytest.raises(DataNotFoundError, match='nowhere.*ADEChallengeData2016.zip'):
        common.check_data(cfg, ('train', 'val'))
    common.check_data(cfg, ('test', ))  # only the splits the run uses


def test_check_data_coco_annotations(coco_root):
    cfg = common.load_config(COCO, loader_options(coco_root))
    with pytest.raises(DataNotFoundError, match='test_evaluator.ann_file.*cocodataset'):
        common.check_data(cfg, ('test', ))


def test_check_pretrained_dict_and_list(tmp_path):
    cfg = common.load_config(ADE)
    missing = str(tmp_path / 'pretrain' / 'replknet.pth')
    for init_cfg in (dict(type='Pretrained', checkpoint=missing),
                     [dict(type='Kaiming'), dict(type='Pretrained', checkpoint=missing)]):
        cfg.model.backbone.init_cfg = init_cfg
        with pytest.raises(CheckpointNotFoundError,
                           match='tools/model_converters/convert_checkpoint.py'):
            common.check_pretrained(cfg)
    cfg.model.backbone.init_cfg = dict(type='Pretrained', checkpoint='https://x/y.pth')
    common.check_pretrained(cfg)  # URLs are mmengine's to fetch


def test_parse_arch():
    assert common.parse_arch('31b') == '31B'
    assert common.parse_arch('{"layers": [1]}') == {'layers': [1]}
    for bad in ('31X', '{layers'):
        with pytest.raises(argparse.ArgumentTypeError):
            common.parse_arch(bad)


def test_check_checkpoint_before_anything_is_built(tmp_path):
    with pytest.raises(CheckpointNotFoundError,
                       match=f'checkpoint to resume from not found: {tmp_path}/none.pth'):
        common.check_checkpoint(str(tmp_path / 'none.pth'), 'checkpoint to resume from')
    (tmp_path / 'empty.pth').write_bytes(b'')
    with pytest.raises(CheckpointError, match=r'is empty \(0 bytes\).*\(the checkpoint\)'):
        common.check_checkpoint(str(tmp_path / 'empty.pth'), 'checkpoint')
    common.check_checkpoint('https://host/weights.pth', 'checkpoint')  # mmengine fetches
