"""Throughput and memory of RepLKNet backbones: inference and training step, training
vs deploy form, stock vs fast depthwise conv, against mmseg's Swin-B in the same run.

Examples::

    # CPU targets of the project: batch 1 @224 inference, batch 2 @128 training step
    python tools/analysis_tools/benchmark.py --arch 31B --batch 1 --shape 224 --compare swin-b
    python tools/analysis_tools/benchmark.py --arch 31B --batch 2 --shape 128 --train --no-infer --compare swin-b
    # the paper's GPU setting (fp32, batch 64), and the depthwise-conv time share
    python tools/analysis_tools/benchmark.py --arch 31B --device cuda --batch 64 --shape 224 --compare swin-b
    python tools/analysis_tools/benchmark.py --arch 31B --profile
    # the backbone of a config
    python tools/analysis_tools/benchmark.py configs/upernet_replk31b_ade20k.py --shape 512

The model is the backbone of an mmseg/mmdet CONFIG, or a RepLKNet --arch (31B 31L XL 3 7
13 25, or a JSON arch dict). Every model is the bare backbone (four
output stages) for RepLKNet and Swin-B alike. 'stock' is the path the reference
implementations (mmpretrain, official) run: NCHW and PyTorch's F.conv2d
(``dwconv_impl='torch', channels_last=False``); 'fast' is mmreplk's default (fast
depthwise conv; channels_last on CPU). Times are medians.
"""
import argparse
import json
import os.path as osp

import torch

from mmreplk.analysis.benchmark import (benchmark, build_swin_b, dwconv_time_share,
                                        format_report, speed_ratios)
from mmreplk.analysis.complexity import build_from_config
from mmreplk.apis import (add_model_args, load_config, non_negative_int, positive_int,
                          run)

# 'stock': the path of the reference implementations (mmpretrain, official): NCHW and
# F.conv2d; 'fast': mmreplk's defaults (fast depthwise conv, channels_last on CPU).
IMPLS = {'stock': dict(dwconv_impl='torch', channels_last=False), 'fast': {}}


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    add_model_args(p, 'measure this RepLKNet arch instead of a config\'s backbone')
    p.add_argument('--batch', type=positive_int, default=1)
    p.add_argument('--shape', type=positive_int, nargs='+', default=[224], help='S or H W')
    p.add_argument('--amp', action='store_true',
                   help='autocast (bf16 on CPU, fp16 on CUDA)')
    p.add_argument('--deploy', action='store_true',
                   help='inference of the deploy form only (no training form)')
    p.add_argument('--train', action='store_true',
                   help='also time a training step (training form)')
    p.add_argument('--no-infer', action='store_true', help='skip inference timing')
    p.add_argument('--impls', nargs='+', default=['stock', 'fast'],
                   choices=sorted(IMPLS), help='depthwise conv paths to measure')
    p.add_argument('--compare', nargs='*', default=[], choices=['swin-b'],
                   help='reference models measured in the same run')
    p.add_argument('--profile', action='store_true',
                   help='report the share of inference time in large-kernel '
                        'depthwise convs')
    p.add_argument('--warmup', type=non_negative_int, default=2)
    p.add_argument('--iters', type=positive_int, default=10)
    p.add_argument('--device', default='cpu')
    p.add_argument('--threads', type=positive_int, help='torch.set_num_threads')
    p.add_argument('--json', help='also write the rows to this JSON file')
    args = p.parse_args(argv)
    if len(args.shape) not in (1, 2):
        p.error('--shape takes S or H W')
    if args.no_infer and not args.train and not args.profile:
        p.error('nothing to measure')
    if (args.config is None) == (args.arch is None):
        p.error('give a CONFIG or --arch (one of them)')
    return args


def build_replknet(args, overrides, deploy):
    if args.config is not None:
        cfg = load_config(args.config, args.cfg_options)
        model, _ = build_from_config(cfg, backbone_only=True,
                                     backbone_overrides=overrides)
    else:
        from mmreplk.models import RepLKNet
        model = RepLKNet(arch=args.arch, **overrides)
    if deploy:
        model.switch_to_deploy()
    return model


def main(argv=None):
    args = parse_args(argv)
    threads = torch.get_num_threads()
    if args.threads:
        torch.set_num_threads(args.threads)
    try:
        return measure(args)
    finally:
        torch.set_num_threads(threads)


def measure(args):
    device = torch.device(args.device)
    shape = tuple(args.shape) if len(args.shape) == 2 else (args.shape[0], ) * 2
    name = (osp.splitext(osp.basename(args.config))[0] if args.config is not None else
            f'RepLKNet-{"custom" if isinstance(args.arch, dict) else args.arch}')
    forms = ['deploy'] if args.deploy else ['train', 'deploy']
    modes = [] if args.no_infer else ['infer']
    if args.train and not args.deploy:
        modes.append('train')
    kw = dict(device=device, amp=args.amp, warmup=args.warmup, iters=args.iters)

    rows, shares = [], []
    for form in forms:
        form_modes = [m for m in modes if not (m == 'train' and form == 'deploy')]
        if not form_modes and not args.profile:
            continue
        for impl_name in args.impls:
            model = build_replknet(args, IMPLS[impl_name], form == 'deploy')
            for mode in form_modes:
                r = benchmark(model, args.batch, shape, mode, **kw)
                rows.append(dict(model=name, form=form, dwconv=impl_name, **r))
            if args.profile:
                s = dwconv_time_share(model, args.batch, shape, device=device,
                                      amp=args.amp, warmup=args.warmup,
                                      iters=max(args.iters // 2, 1))
                shares.append(dict(model=name, form=form, dwconv=impl_name, **s))
            del model
    for ref in args.compare:
        model = build_swin_b(img_size=max(shape))
        for mode in modes:
            r = benchmark(model, args.batch, shape, mode, **kw)
            rows.append(dict(model='Swin-B (mmseg)', form='-', dwconv='-', **r))
        del model

    print(f'device {device} ({torch.get_num_threads()} threads), torch '
          f'{torch.__version__}, batch {args.batch}, input {shape[0]}x{shape[1]}, '
          f'{"amp" if args.amp else "fp32"}, median of {args.iters} iterations')
    ratios = speed_ratios(rows, modes)
    print(format_report(rows, ratios, shares))
    result = dict(rows=rows, ratios=[dict(name=t, ratio=v) for t, v in ratios],
                  dwconv_share=shares, device=str(device),
                  threads=torch.get_num_threads())
    if args.json:
        with open(args.json, 'w') as f:
            json.dump(result, f, indent=2, default=list)
    return result


if __name__ == '__main__':
    run(main)
