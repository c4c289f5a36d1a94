"""Effective receptive field analysis (RepLKNet paper, Fig. 1 / Table 5).

Examples::

    # RepLKNet-31B, 13 and mmseg's ResNet-101/152 side by side, 50 images at 1024
    python tools/analysis_tools/analyze_erf.py --images data/erf_images --arch 31B 13 \
        --resnet 101 152 --size 1024 --num-images 50 --out-dir work_dirs/erf
    # the backbone of a config, with trained weights
    python tools/analysis_tools/analyze_erf.py configs/upernet_replk31b_ade20k.py \
        --images data/erf_images --checkpoint work_dirs/upernet/iter_160000.pth --name upernet31b
    # only the comparison figure and r(t) of saved maps
    python tools/analysis_tools/analyze_erf.py --compare work_dirs/erf/erf_31B.npy work_dirs/erf/erf_resnet101.npy

For every model it saves ``erf_<name>.npy`` (the averaged, unnormalized map) and
``erf_<name>.png`` (the heat map of ``log10(x + 1)`` rescaled to [0, 1]) and prints the
high-contribution area ratio r(t); with several models it also saves
``erf_comparison.png``. Models run in eval mode (BatchNorm running statistics).
"""
import argparse
import json
import os
import os.path as osp

from mmreplk.analysis.complexity import build_from_config
from mmreplk.analysis.erf import DEFAULT_THRESHOLDS, list_images
from mmreplk.analysis.erf_models import (analyse, build_replknet, build_resnet,
                                         compare_saved)
from mmreplk.apis import (add_model_args, load_config, non_negative_int, positive_int,
                          run)
from mmreplk.errors import ConfigError


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    add_model_args(p, 'RepLKNet archs to analyse', many_archs=True)
    p.add_argument('--resnet', type=positive_int, nargs='+', default=[], metavar='DEPTH',
                   help="mmseg's ResNet of these depths (e.g. 101 152), for comparison")
    p.add_argument('--images', help='folder of images (any common format)')
    p.add_argument('--checkpoint',
                   help='weights for the single model analysed (any RepLKNet format; '
                        'other backbones: "backbone."/"module." prefixes removed, '
                        'extra keys such as a classifier ignored)')
    p.add_argument('--name', help='name of the CONFIG model in outputs')
    p.add_argument('--size', type=positive_int, nargs='+', default=[1024],
                   help='input size: S or H W (default 1024)')
    p.add_argument('--num-images', type=positive_int, default=None,
                   help='use only the first N images (sorted by name)')
    p.add_argument('--recursive', action='store_true', help='look into sub-folders')
    p.add_argument('--thresholds', type=float, nargs='+',
                   default=list(DEFAULT_THRESHOLDS))
    p.add_argument('--out-dir', default='work_dirs/erf')
    p.add_argument('--compare', nargs='+', metavar='NPY',
                   help='skip the analysis: plot these saved maps side by side')
    p.add_argument('--titles', nargs='+', help='titles for the comparison figure')
    p.add_argument('--device', default='cpu')
    p.add_argument('--dwconv-impl', default=None,
                   help="RepLKNet depthwise conv path (None = default, 'torch' = stock)")
    p.add_argument('--json', help='also write the r(t) numbers to this JSON file')
    p.add_argument('--make-synthetic', type=non_negative_int, metavar='N', default=0,
                   help='first write N synthetic images (at --size) into the image '
                        'folder (for machines without real images)')
    p.add_argument('--no-progress', action='store_true')
    args = p.parse_args(argv)
    if args.compare is None:
        if args.images is None:
            p.error('--images is required (or use --compare)')
        if not (args.arch or args.resnet or args.config):
            p.error('give a CONFIG, --arch and/or --resnet')
    if len(args.size) not in (1, 2):
        p.error('--size takes S or H W')
    return args


def model_jobs(args):
    """``(name, builder)`` of every model to analyse."""
    jobs = [(a if isinstance(a, str) else json.dumps(a),
             lambda a=a: build_replknet(a, args.dwconv_impl)) for a in args.arch or []]
    jobs += [(f'resnet{d}', lambda d=d: build_resnet(d)) for d in args.resnet]
    if args.config:
        name = args.name or osp.splitext(osp.basename(args.config))[0]
        cfg = load_config(args.config, args.cfg_options)
        jobs.append((name, lambda: build_from_config(cfg, backbone_only=True)[0]))
    if args.checkpoint and len(jobs) != 1:
        raise ConfigError('--checkpoint needs exactly one model')
    return jobs


def main(argv=None):
    args = parse_args(argv)
    os.makedirs(args.out_dir, exist_ok=True)
    if args.compare:
        titles = args.titles or [osp.splitext(osp.basename(p))[0] for p in args.compare]
        results = compare_saved(args.compare, titles, args.out_dir, args.thresholds)
    else:
        jobs = model_jobs(args)
        if args.make_synthetic:
            from mmreplk.testing.synthetic import write_images
            write_images(args.images, args.make_synthetic, size=max(args.size))
        paths = list_images(args.images, recursive=args.recursive)
        if args.num_images:
            paths = paths[:args.num_images]
        size = tuple(args.size) if len(args.size) == 2 else args.size[0]
        print(f'{len(paths)} images from {args.images} at {size}; models run in '
              'eval mode')
        results = analyse(jobs, paths, size, args.out_dir, args.thresholds,
                          checkpoint=args.checkpoint, device=args.device,
                          progress=not args.no_progress)
    if args.json:
        with open(args.json, 'w') as f:
            json.dump(results, f, indent=2)
    return results


if __name__ == '__main__':
    run(main)
