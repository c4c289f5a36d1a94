#!/usr/bin/env python
"""Re-parameterize a trained segmentor / detector checkpoint whose backbone is RepLKNet.

    python tools/reparameterize.py CONFIG CHECKPOINT OUT.pth [--out-config OUT.py]

Writes OUT.pth (the model's state dict with a BN-free backbone) and a config with
``model.backbone.deploy=True`` that loads it: ``python tools/test.py OUT.py OUT.pth``.
"""
import argparse
import os.path as osp
import sys

from mmengine.config import Config
from mmengine.registry import MODELS, init_default_scope
from mmengine.utils import import_modules_from_strings

from mmreplk.utils import atomic_save, load_checkpoint_file


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('config')
    parser.add_argument('checkpoint')
    parser.add_argument('out', help='output checkpoint')
    parser.add_argument('--out-config', help='output config (default: OUT with .py)')
    return parser.parse_args()


def reparameterize(config: str, checkpoint: str, out: str, out_config: str) -> None:
    """Load ``checkpoint`` into the model of ``config``, switch its backbone to the deploy
    form, and write the new checkpoint and config."""
    cfg = Config.fromfile(config)
    if cfg.get('custom_imports'):
        import_modules_from_strings(**cfg.custom_imports)
    init_default_scope(cfg.get('default_scope', 'mmseg'))
    if cfg.model.get('backbone', {}).get('type', '') not in (
            'mmreplk.RepLKNet', 'RepLKNet'):
        raise ValueError(f'{config}: model.backbone is not a RepLKNet')
    cfg.model.backbone.init_cfg = None  # the checkpoint brings every weight
    model = MODELS.build(cfg.model)
    ckpt = load_checkpoint_file(checkpoint)
    state = ckpt.get('state_dict', ckpt)
    missing, unexpected = model.load_state_dict(state, strict=False)
    if missing or unexpected:
        raise ValueError(f'{checkpoint} does not match {config}: missing '
                         f'{missing[:5]}..., unexpected {unexpected[:5]}...')
    model.eval()
    model.backbone.switch_to_deploy()
    meta = dict(ckpt.get('meta', {}), reparameterized_from=checkpoint)
    atomic_save({'state_dict': model.state_dict(), 'meta': meta}, out)
    cfg.model.backbone.deploy = True
    cfg.load_from = out
    cfg.dump(out_config)


def main() -> int:
    args = parse_args()
    out_config = args.out_config or osp.splitext(args.out)[0] + '.py'
    try:
        reparameterize(args.config, args.checkpoint, args.out, out_config)
    except (ValueError, FileNotFoundError) as e:
        print(f'error: {e}', file=sys.stderr)
        return 1
    print(f'wrote {args.out} and {out_config}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
