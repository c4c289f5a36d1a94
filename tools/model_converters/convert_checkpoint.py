#!/usr/bin/env python
"""Convert RepLKNet weights (official, mmpretrain, or mmseg 0.x / mmdet 2.x downstream) to an
mmengine checkpoint for ``init_cfg=dict(type='Pretrained', checkpoint=DST, prefix='backbone.')``.

    python tools/model_converters/convert_checkpoint.py RepLKNet-31B_ImageNet-22K.pth pretrain/replknet-31B_in22k.pth
"""
import argparse

from mmreplk.apis import add_force, check_outputs, parse_arch, run
from mmreplk.models import (RepLKNet, RepLKNetClassifier, arch_name,
                            extract_replknet_state_dict, infer_arch,
                            load_replknet_state_dict)
from mmreplk.utils import atomic_save, load_checkpoint_file


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('src', help='source checkpoint (path or URL)')
    parser.add_argument('dst', help='output mmengine checkpoint')
    parser.add_argument('--arch', type=parse_arch,
                        help='check against this arch (default: read off the weights)')
    add_force(parser)
    return parser.parse_args()


def convert(src: str, dst: str, arch=None) -> str:
    """Convert ``src`` into ``dst`` and return a one-line report; a
    :class:`~mmreplk.errors.CheckpointError` on a mismatch."""
    state_dict, report = extract_replknet_state_dict(load_checkpoint_file(src))
    found = infer_arch(state_dict)
    name = arch or arch_name(found) or found
    kwargs = dict(arch=arch or found, deploy=report.merged,
                  norm_intermediate_features=found['norm_intermediate_features'])
    if 'head.weight' in state_dict:
        model = RepLKNetClassifier(num_classes=state_dict['head.weight'].shape[0],
                                   **kwargs)
    else:
        model = RepLKNet(**kwargs)
    report = load_replknet_state_dict(model, state_dict, report)
    atomic_save({'state_dict': {'backbone.' + k: v for k, v in state_dict.items()},
                 'meta': dict(converted_from=src, source_format=report.source_format,
                              arch=name, merged=report.merged)}, dst)
    return (f'{src} -> {dst}: arch {name}; {report.summary()}'
            + (' (load with deploy=True)' if report.merged else ''))


def main() -> None:
    args = parse_args()
    check_outputs({'output checkpoint': args.dst}, [args.src], args.force)
    print(convert(args.src, args.dst, args.arch))


if __name__ == '__main__':
    run(main)
