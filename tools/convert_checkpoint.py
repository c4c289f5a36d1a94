#!/usr/bin/env python
"""Convert RepLKNet weights (official, mmpretrain, or mmseg 0.x / mmdet 2.x downstream) to an
mmengine checkpoint for ``init_cfg=dict(type='Pretrained', checkpoint=DST, prefix='backbone.')``.

    python tools/convert_checkpoint.py RepLKNet-31B_ImageNet-22K.pth pretrain/replknet-31B_in22k.pth
"""
import argparse
import sys

from mmreplk.models import (RepLKNet, RepLKNetClassifier, arch_name,
                            extract_replknet_state_dict, infer_arch,
                            load_replknet_state_dict)
from mmreplk.utils import atomic_save, load_checkpoint_file


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('src', help='source checkpoint (path or URL)')
    parser.add_argument('dst', help='output mmengine checkpoint')
    parser.add_argument('--arch', help='check against this arch (default: read off the '
                        f'weights); one of {sorted(RepLKNet.arch_zoo)}')
    return parser.parse_args()


def convert(src: str, dst: str, arch: str = None) -> str:
    """Convert ``src`` into ``dst`` and return a one-line report; ValueError on mismatch."""
    state_dict, report = extract_replknet_state_dict(load_checkpoint_file(src))
    found = infer_arch(state_dict)
    name = arch_name(found)
    settings = arch or found
    if arch is not None and arch not in RepLKNet.arch_zoo:
        raise ValueError(f'Unknown arch {arch!r}; valid: {sorted(RepLKNet.arch_zoo)}')
    kwargs = dict(arch=settings, deploy=report.merged,
                  norm_intermediate_features=found['norm_intermediate_features'])
    if 'head.weight' in state_dict:
        model = RepLKNetClassifier(num_classes=state_dict['head.weight'].shape[0],
                                   **kwargs)
    else:
        model = RepLKNet(**kwargs)
    report = load_replknet_state_dict(model, state_dict, report)
    atomic_save({'state_dict': {'backbone.' + k: v for k, v in state_dict.items()},
                 'meta': dict(converted_from=src, source_format=report.source_format,
                              arch=arch or name or found, merged=report.merged)}, dst)
    return (f'{src} -> {dst}: arch {arch or name or found}; {report.summary()}'
            + (' (load with deploy=True)' if report.merged else ''))


def main() -> int:
    args = parse_args()
    try:
        print(convert(args.src, args.dst, args.arch))
    except (ValueError, FileNotFoundError) as e:
        print(f'error: {e}', file=sys.stderr)
        return 1
    return 0


if __name__ == '__main__':
    sys.exit(main())
