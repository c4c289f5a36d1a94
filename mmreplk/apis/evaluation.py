"""What tools/test.py sets up around the runner: where results go (``--out``), the
visualization hook (``--show``, ``--show-dir``) and test-time augmentation (``--tta``)."""
import argparse
import copy
import os.path as osp
from typing import List, Optional

from mmengine.config import ConfigDict

from mmreplk.errors import ConfigError

from .outputs import check_outputs


def enable_visualization(cfg: ConfigDict, args: argparse.Namespace,
                         scope: str) -> None:
    """Turn the visualization hook on for --show / --show-dir."""
    hook = cfg.default_hooks.get('visualization')
    if hook is None:
        raise ConfigError('--show/--show-dir need default_hooks.visualization '
                          'in the config')
    hook['draw'] = True
    if args.show:
        hook['show'] = True
        hook['wait_time'] = args.wait_time
    if args.show_dir:
        if scope == 'mmseg':
            cfg.visualizer['save_dir'] = args.show_dir
        else:
            hook['test_out_dir'] = args.show_dir


def enable_tta(cfg: ConfigDict, scope: str) -> None:
    """Wrap the model in the config's TTA model and use its TTA pipeline.

    mmdet configs without ``tta_model`` / ``tta_pipeline`` get a horizontal
    flip TTA built from their test pipeline, as mmdet's own test tool does.
    """
    if scope == 'mmdet':
        cfg.setdefault(
            'tta_model',
            dict(
                type='DetTTAModel',
                tta_cfg=dict(
                    nms=dict(type='nms', iou_threshold=0.5),
                    max_per_img=100)))
        if 'tta_pipeline' not in cfg:
            dataset = cfg.test_dataloader.dataset
            while 'dataset' in dataset:
                dataset = dataset['dataset']
            pipeline = copy.deepcopy(dataset.pipeline)
            pipeline[-1] = dict(
                type='TestTimeAug',
                transforms=[[
                    dict(type='RandomFlip', prob=1.),
                    dict(type='RandomFlip', prob=0.)
                ], [
                    dict(
                        type='PackDetInputs',
                        meta_keys=('img_id', 'img_path', 'ori_shape',
                                   'img_shape', 'scale_factor', 'flip',
                                   'flip_direction'))
                ]])
            cfg.tta_pipeline = pipeline
    if 'tta_model' not in cfg or 'tta_pipeline' not in cfg:
        raise ConfigError('--tta needs tta_model and tta_pipeline in the config')
    cfg.test_dataloader.dataset.pipeline = cfg.tta_pipeline
    cfg.model = ConfigDict(**cfg.tta_model, module=cfg.model)


def check_out(out: Optional[str], scope: str, inputs: List[str], force: bool) -> None:
    """``--out``: mmdet's results file (a new .pkl / .pickle, never an input), mmseg's
    folder of predicted maps (not a file)."""
    if out is None:
        return
    if scope == 'mmdet':
        if not out.endswith(('.pkl', '.pickle')):
            raise ConfigError(f'--out must be a .pkl or .pickle file for mmdet, got {out}')
        check_outputs({'--out file': out}, inputs, force)
    elif osp.isfile(out) or osp.splitext(out)[1] in ('.pkl', '.pickle', '.json'):
        raise ConfigError(f'--out {out} names a file: mmseg writes the predicted maps into '
                          'a folder; give a folder')
