"""Parameters and FLOPs (multiply-accumulates, the paper's convention) of a model.

Examples::

    python tools/analysis_tools/get_flops.py configs/upernet_replk31b_ade20k.py --shape 2048 512
    python tools/analysis_tools/get_flops.py configs/cascade_mask_rcnn_replk31b_coco.py --shape 1280 800
    python tools/analysis_tools/get_flops.py --arch 31B --shape 384     # the ImageNet classifier
    python tools/analysis_tools/get_flops.py --arch 31B --deploy        # merged (deploy) form only

CONFIG is an mmseg / mmdet config (the segmentor / detector is counted whole and its
backbone alone); --arch a RepLKNet arch (31B, 31L, XL, 3, 7, 13, 25 or a JSON dict: the
ImageNet classifier and its backbone). Both the training form and the deploy form (after
``switch_to_deploy``: every re-parameterization merged, no BatchNorm left in the
backbone) are reported unless --deploy or --train is given. Counting is mmengine's
FlopAnalyzer; see mmreplk/analysis/complexity.py and docs/reproduce.md for what it counts.
--shape H W follows the mmseg / mmdet tools: the input is (1, 3, H, W).
"""
import argparse
import json

import torch

from mmreplk.analysis.complexity import (build_from_config, complexity_report,
                                         format_report)
from mmreplk.apis import add_model_args, load_config, positive_int, run
DEFAULT_SHAPES = {'seg': (2048, 512), 'det': (1280, 800), 'cls': (224, 224),
                  'backbone': (224, 224)}


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    add_model_args(p, 'count this RepLKNet arch instead of a config')
    p.add_argument('--shape', type=positive_int, nargs='+',
                   help='input H [W] (default: 2048 512 seg, 1280 800 det, 224 cls)')
    form = p.add_mutually_exclusive_group()
    form.add_argument('--deploy', action='store_true', help='deploy form only')
    form.add_argument('--train', action='store_true', help='training form only')
    p.add_argument('--backbone-only', action='store_true',
                   help='for --arch: count the bare backbone, not the classifier')
    p.add_argument('--num-classes', type=positive_int, default=1000,
                   help='classifier classes for --arch (default 1000)')
    p.add_argument('--json', help='also write the rows to this JSON file')
    args = p.parse_args(argv)
    if (args.config is None) == (args.arch is None):
        p.error('give a CONFIG or --arch (one of them)')
    if args.shape is not None and len(args.shape) not in (1, 2):
        p.error('--shape takes H or H W')
    return args


def build(args):
    if args.config is not None:
        return build_from_config(load_config(args.config, args.cfg_options))
    from mmreplk.models import RepLKNet, RepLKNetClassifier
    if args.backbone_only:
        return RepLKNet(arch=args.arch), 'backbone'
    return RepLKNetClassifier(arch=args.arch, num_classes=args.num_classes), 'cls'


def main(argv=None):
    args = parse_args(argv)
    model, task = build(args)
    shape = args.shape or DEFAULT_SHAPES[task]
    if len(shape) == 1:
        shape = (shape[0], shape[0])
    forms = ('deploy', ) if args.deploy else ('train', ) if args.train else \
        ('train', 'deploy')
    with torch.no_grad():
        rows = complexity_report(model, task, (3, *shape), forms=forms)
    name = args.config or f'RepLKNet {json.dumps(args.arch)}'
    title = (f'{name}: input 1x3x{shape[0]}x{shape[1]}; FLOPs are '
             'multiply-accumulates (mmengine FlopAnalyzer)')
    print(format_report(rows, title))
    if task == 'seg':
        print('"whole" excludes the auxiliary head (training only); '
              '"whole (+aux head)" includes its parameters.')
    if args.json:
        with open(args.json, 'w') as f:
            json.dump(dict(config=args.config, arch=args.arch, shape=list(shape),
                           task=task, rows=rows), f, indent=2)
    return rows


if __name__ == '__main__':
    run(main)
