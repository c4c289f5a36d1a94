"""Test (and evaluate) a RepLKNet segmentor or detector checkpoint.

Same command line as mmsegmentation 1.2.2 / mmdetection 3.3.0 ``tools/test.py``:

    python tools/test.py CONFIG CHECKPOINT [--work-dir DIR] [--out OUT]
        [--show] [--show-dir DIR] [--wait-time S] [--tta]
        [--cfg-options k=v ...] [--non-strict] [--launcher none|pytorch|slurm|mpi]

``--out``: a directory for the predicted maps (mmseg) or a .pkl file of the
raw results (mmdet). The checkpoint must match the model (mmseg and mmdet load it
non-strictly and evaluate whatever loaded); ``--non-strict`` restores their behaviour.
"""
import argparse
import copy
import os.path as osp

from mmengine.config import ConfigDict
from mmengine.logging import print_log

from mmreplk.apis import (add_force, build_runner, check_checkpoint, check_data,
                          check_data_sets, check_outputs, host_scope, load_run_config,
                          parse_runner_args, run)
from mmreplk.errors import ConfigError


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Test (and evaluate) a RepLKNet model')
    parser.add_argument('config', help='test config file path')
    parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument(
        '--work-dir',
        help='the dir to save the evaluation results and logs')
    parser.add_argument(
        '--out',
        type=str,
        help='mmseg: dir to save the predicted maps; mmdet: .pkl file to '
        'dump the results to')
    parser.add_argument(
        '--show', action='store_true', help='show prediction results')
    parser.add_argument(
        '--show-dir', help='directory where painted images will be saved')
    parser.add_argument(
        '--wait-time', type=float, default=2, help='the interval of show (s)')
    parser.add_argument(
        '--tta', action='store_true', help='test-time augmentation')
    add_force(parser)
    return parse_runner_args(parser)


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


def main() -> None:
    args = parse_args()
    cfg = load_run_config(args.config, args.cfg_options, args.work_dir,
                          args.launcher)
    scope = host_scope(cfg)
    check_checkpoint(args.checkpoint, 'checkpoint')
    check_data(cfg, ('test', ))
    if not args.no_data_check:
        print_log(check_data_sets(cfg, ('test', )), logger='current')
    cfg.load_from = args.checkpoint
    # Testing restores every weight from the checkpoint: skip the ImageNet
    # initialization (and its download).
    cfg.model.backbone.init_cfg = None

    if args.show or args.show_dir:
        enable_visualization(cfg, args, scope)
    if args.tta:
        enable_tta(cfg, scope)
    if args.out is not None and scope == 'mmseg':
        cfg.test_evaluator['output_dir'] = args.out
        cfg.test_evaluator['keep_results'] = True
    if args.out is not None and scope == 'mmdet':
        if not args.out.endswith(('.pkl', '.pickle')):
            raise ConfigError(f'--out must be a .pkl or .pickle file for mmdet, '
                              f'got {args.out}')
        check_outputs({'--out file': args.out}, [args.config, args.checkpoint],
                      args.force)
    elif args.out is not None and osp.isfile(args.out):
        raise ConfigError(f'--out {args.out} is a file: mmseg writes the predicted maps '
                          'into a folder')

    runner = build_runner(cfg, strict=not args.non_strict)
    if args.out is not None and scope == 'mmdet':
        from mmdet.evaluation import DumpDetResults
        runner.test_evaluator.metrics.append(
            DumpDetResults(out_file_path=args.out))
    runner.test()


if __name__ == '__main__':
    run(main)
