"""Train a RepLKNet segmentor (mmseg config) or detector (mmdet config).

Same command line as mmsegmentation 1.2.2 / mmdetection 3.3.0 ``tools/train.py``:

    python tools/train.py CONFIG [--work-dir DIR] [--resume [CKPT]] [--amp]
        [--auto-scale-lr] [--cfg-options k=v ...] [--non-strict]
        [--launcher none|pytorch|slurm|mpi]

``--resume`` alone continues from the newest complete checkpoint in the work
dir (an interrupted run resumes at the iteration it last saved; the lr schedule is
rebuilt from the config). One run at a time owns a work dir. A ``load_from`` or
resume checkpoint must match the model; ``--non-strict`` loads what matches, as
mmseg and mmdet do.
"""
import argparse
import os.path as osp

import torch
from mmengine.logging import print_log

from mmreplk.apis import (build_runner, check_checkpoint, check_data, check_data_sets,
                          check_pretrained, check_work_dir, load_run_config,
                          lock_work_dir, parse_runner_args, run, splits_of)
from mmreplk.engine import latest_checkpoint  # switches the engine on
from mmreplk.errors import ConfigError


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Train a RepLKNet model with the MM runner')
    parser.add_argument('config', help='train config file path')
    parser.add_argument('--work-dir', help='the dir to save logs and models')
    parser.add_argument(
        '--resume',
        nargs='?',
        type=str,
        const='auto',
        help='resume from the given checkpoint, or (no value) from the '
        'latest checkpoint in the work dir')
    parser.add_argument(
        '--amp',
        action='store_true',
        default=False,
        help='enable automatic-mixed-precision training (needs a GPU)')
    parser.add_argument(
        '--auto-scale-lr',
        action='store_true',
        help='scale the lr by the real total batch over '
        'auto_scale_lr.base_batch_size')
    return parse_runner_args(parser)


def main() -> None:
    args = parse_args()
    cfg = load_run_config(args.config, args.cfg_options, args.work_dir,
                          args.launcher)

    if args.amp:
        if not torch.cuda.is_available():
            raise ConfigError(
                '--amp needs a CUDA GPU (mmengine\'s AmpOptimWrapper)')
        if cfg.optim_wrapper.get('type', 'OptimWrapper') == 'AmpOptimWrapper':
            print_log('AMP training is already enabled in your config.',
                      logger='current')
        else:
            cfg.optim_wrapper.type = 'AmpOptimWrapper'
            cfg.optim_wrapper.loss_scale = 'dynamic'

    if args.auto_scale_lr:
        if 'base_batch_size' not in cfg.get('auto_scale_lr', {}):
            raise ConfigError('--auto-scale-lr needs auto_scale_lr=dict('
                              'base_batch_size=...) in the config')
        cfg.auto_scale_lr.enable = True

    out_dir = (cfg.get('default_hooks') or {}).get('checkpoint', {}).get('out_dir')
    if args.resume == 'auto' or (args.resume is None and cfg.get('resume')
                                 and not cfg.get('load_from')):
        cfg.load_from = latest_checkpoint(cfg.work_dir, out_dir)
        cfg.resume = cfg.load_from is not None
        if cfg.load_from is None:
            print_log(f'--resume: no checkpoint in {cfg.work_dir}, '
                      'training from scratch', logger='current')
    elif args.resume is not None:
        cfg.resume = True
        cfg.load_from = args.resume

    check_work_dir(cfg.work_dir)
    check_data(cfg, splits_of(cfg, ['train', 'val']))
    if not args.no_data_check:
        print_log(check_data_sets(cfg, splits_of(cfg, ['train', 'val'])),
                  logger='current')
    check_pretrained(cfg)
    check_checkpoint(cfg.get('load_from'),
                     'checkpoint to resume from' if cfg.get('resume')
                     else 'load_from checkpoint')
    if cfg.get('resume') and cfg.load_from:
        print_log(f'resuming from {osp.abspath(cfg.load_from)}',
                  logger='current')

    with lock_work_dir(cfg.work_dir):
        build_runner(cfg, strict=not args.non_strict).train()


if __name__ == '__main__':
    run(main)
