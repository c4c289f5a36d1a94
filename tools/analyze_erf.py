"""Effective receptive field analysis (RepLKNet paper, Fig. 1 / Table 5).

Examples::

    # RepLKNet-31B, 13 and mmseg's ResNet-101/152 side by side, 50 images at 1024
    python tools/analyze_erf.py data/erf_images --models 31B 13 resnet101 resnet152 \
        --size 1024 --num-images 50 --out-dir work_dirs/erf
    # the backbone of a config, with trained weights
    python tools/analyze_erf.py data/erf_images --config configs/upernet_replk31b_ade20k.py \
        --checkpoint work_dirs/upernet/iter_160000.pth --name upernet31b
    # only the comparison figure and r(t) of saved maps
    python tools/analyze_erf.py --compare work_dirs/erf/erf_31B.npy work_dirs/erf/erf_resnet101.npy

For every model it saves ``erf_<name>.npy`` (the averaged, unnormalized map) and
``erf_<name>.png`` (the heat map of ``log10(x + 1)`` rescaled to [0, 1]) and prints the
high-contribution area ratio r(t); with several models it also saves
``erf_comparison.png``. Models run in eval mode (BatchNorm running statistics).
"""
import argparse
import json
import os
import os.path as osp
import re
import sys

import numpy as np

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))

from mmreplk.analysis.complexity import build_backbone_from_config  # noqa: E402
from mmreplk.analysis.erf import (DEFAULT_THRESHOLDS, area_ratios,  # noqa: E402
                                  compute_erf, format_ratios, list_images,
                                  plot_erf_comparison, save_heatmap,
                                  write_synthetic_images)

REPLKNET_ARCHS = ('31B', '31L', 'XL', '3', '7', '13', '25')


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('images', nargs='?', help='folder of images (any common format)')
    p.add_argument('--models', nargs='+', default=[],
                   help='RepLKNet archs (31B 31L XL 3 7 13 25), resnet<depth> '
                        '(mmseg/mmdet ResNet, e.g. resnet101 resnet152), or a JSON '
                        'RepLKNet arch dict')
    p.add_argument('--config', help='analyse the backbone of this mmseg/mmdet config')
    p.add_argument('--checkpoint',
                   help='weights for --config or for a single --models entry '
                        '(flat, "backbone."-prefixed, or wrapped in state_dict/model)')
    p.add_argument('--name', help='name of the --config model in outputs')
    p.add_argument('--size', type=int, nargs='+', default=[1024],
                   help='input size: S or H W (default 1024)')
    p.add_argument('--num-images', type=int, default=None,
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
    p.add_argument('--make-synthetic', type=int, metavar='N', default=0,
                   help='first write N synthetic 1/f-noise images (at --size) into '
                        'the image folder (for machines without real images)')
    p.add_argument('--no-progress', action='store_true')
    args = p.parse_args(argv)
    if args.compare is None:
        if args.images is None:
            p.error('an image folder is required (or use --compare)')
        if not args.models and not args.config:
            p.error('give --models and/or --config')
    if len(args.size) not in (1, 2):
        p.error('--size takes S or H W')
    return args


def _state_dict(path):
    from mmengine.runner import CheckpointLoader
    ckpt = CheckpointLoader.load_checkpoint(path, map_location='cpu')
    for key in ('state_dict', 'model'):
        if isinstance(ckpt, dict) and key in ckpt and isinstance(ckpt[key], dict):
            ckpt = ckpt[key]
    out = {}
    for k, v in ckpt.items():
        k = re.sub(r'^module\.', '', k)
        k = re.sub(r'^backbone\.', '', k)
        out[k] = v
    return out


def load_backbone_weights(model, path):
    """Load ``path`` into ``model``: a RepLKNet through :func:`mmreplk.models.
    load_pretrained` (official, mmpretrain and downstream formats); any other backbone
    by key (after removing 'module.' / 'backbone.' prefixes), extra keys (heads) ignored,
    missing ones an error."""
    from mmreplk.models import RepLKNet, load_pretrained
    if isinstance(model, RepLKNet):  # every published RepLKNet format
        load_pretrained(model, path)
        return
    sd = _state_dict(path)
    own = model.state_dict()
    missing = [k for k in own if k not in sd]
    if missing:
        raise KeyError(f'{len(missing)} weights of the model are not in {path}, '
                       f'e.g. {missing[:5]}')
    model.load_state_dict({k: sd[k] for k in own}, strict=True)


def build_named_model(name, dwconv_impl=None):
    """A backbone returning its last stage: RepLKNet arch, resnet<depth> or JSON arch."""
    low = name.lower()
    m = re.fullmatch(r'resnet(\d+)', low)
    if m:
        try:
            from mmseg.models.backbones import ResNet
        except ImportError:
            from mmdet.models.backbones import ResNet
        return ResNet(depth=int(m.group(1)), out_indices=(3, ))
    from mmreplk.models import RepLKNet
    if name.strip().startswith('{'):
        arch = json.loads(name)
    elif name.upper() in REPLKNET_ARCHS:
        arch = name.upper()
    else:
        raise ValueError(f'unknown model {name!r}: use a RepLKNet arch '
                         f'{REPLKNET_ARCHS}, resnet<depth> or a JSON arch dict')
    kwargs = dict(arch=arch, out_indices=(3, ))
    if dwconv_impl is not None:
        kwargs['dwconv_impl'] = dwconv_impl
    return RepLKNet(**kwargs)


def _safe(name):
    return re.sub(r'[^A-Za-z0-9._-]+', '_', name).strip('_') or 'model'


def report(name, erf, thresholds):
    ratios = area_ratios(erf, thresholds)
    print(format_ratios(f'{name:<12}', ratios))
    return {str(t): r for t, r in ratios.items()}


def main(argv=None):
    args = parse_args(argv)
    os.makedirs(args.out_dir, exist_ok=True)
    results = {}
    if args.compare:
        erfs = [np.load(p) for p in args.compare]
        titles = args.titles or [osp.splitext(osp.basename(p))[0] for p in args.compare]
        print('high-contribution area ratio r(t):')
        for t, e in zip(titles, erfs):
            results[t] = report(t, e, args.thresholds)
        path = osp.join(args.out_dir, 'erf_comparison.png')
        plot_erf_comparison(erfs, titles, path)
        print(f'saved {path}')
    else:
        if args.make_synthetic:
            write_synthetic_images(args.images, args.make_synthetic,
                                   size=max(args.size))
        paths = list_images(args.images, recursive=args.recursive)
        if args.num_images:
            paths = paths[:args.num_images]
        size = tuple(args.size) if len(args.size) == 2 else args.size[0]
        jobs = [(n, lambda n=n: build_named_model(n, args.dwconv_impl))
                for n in args.models]
        if args.config:
            cname = args.name or osp.splitext(osp.basename(args.config))[0]
            jobs.append((cname, lambda: build_backbone_from_config(args.config)))
        if args.checkpoint and len(jobs) != 1:
            raise SystemExit('--checkpoint needs exactly one model')
        print(f'{len(paths)} images from {args.images} at {size}; models run in '
              'eval mode')
        erfs, titles = [], []
        for name, build in jobs:
            model = build()
            if args.checkpoint:
                load_backbone_weights(model, args.checkpoint)
            model.to(args.device)
            model.eval()  # mmseg's ResNet.train() returns None: no chaining
            print(f'[{name}]')
            erf = compute_erf(model, paths, size=size, device=args.device,
                              progress=not args.no_progress)
            tag = _safe(name)
            np.save(osp.join(args.out_dir, f'erf_{tag}.npy'), erf)
            save_heatmap(erf, osp.join(args.out_dir, f'erf_{tag}.png'), title=name)
            erfs.append(erf)
            titles.append(name)
            del model
        print('high-contribution area ratio r(t) (percent of the input area):')
        for name, erf in zip(titles, erfs):
            results[name] = report(name, erf, args.thresholds)
        if len(erfs) > 1:
            plot_erf_comparison(erfs, titles,
                                osp.join(args.out_dir, 'erf_comparison.png'))
        print(f'saved maps and heat maps under {args.out_dir}')
    if args.json:
        with open(args.json, 'w') as f:
            json.dump(results, f, indent=2)
    return results


if __name__ == '__main__':
    main()
