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

from mmengine.logging import print_log

from mmreplk.apis import (add_force, build_runner, check_checkpoint, check_data,
                          check_data_sets, host_scope, load_run_config,
                          parse_runner_args, run)
from mmreplk.apis.evaluation import check_out, enable_tta, enable_visualization


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


def main() -> None:
    args = parse_args()
    cfg = load_run_config(args.config, args.cfg_options, args.work_dir,
                          args.launcher)
    scope = host_scope(cfg)
    check_out(args.out, scope, [args.config, args.checkpoint], args.force)
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

    runner = build_runner(cfg, strict=not args.non_strict)
    if args.out is not None and scope == 'mmdet':
        from mmdet.evaluation import DumpDetResults
        runner.test_evaluator.metrics.append(
            DumpDetResults(out_file_path=args.out))
    runner.test()


if __name__ == '__main__':
    run(main)
