#!/usr/bin/env python
"""Re-parameterize a trained segmentor / detector checkpoint whose backbone is RepLKNet.

    python tools/model_converters/reparameterize.py CONFIG CHECKPOINT OUT.pth [--out-config OUT.py]

Writes OUT.pth (the model's state dict with a BN-free backbone) and a config with
``model.backbone.deploy=True`` that loads it: ``python tools/test.py OUT.py OUT.pth``.
"""
import argparse
import os.path as osp

from mmengine.registry import MODELS, DefaultScope

from mmreplk.apis import (add_cfg_options, add_force, check_outputs, host_scope,
                          load_config, run)
from mmreplk.errors import ConfigError
from mmreplk.models import load_matching
from mmreplk.utils import atomic_save, load_checkpoint_file


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('config')
    parser.add_argument('checkpoint')
    parser.add_argument('out', help='output checkpoint')
    parser.add_argument('--out-config', help='output config (default: OUT with .py)')
    add_force(parser)
    add_cfg_options(parser)
    return parser.parse_args()


def reparameterize(cfg, checkpoint: str, out: str, out_config: str) -> None:
    """Load ``checkpoint`` strictly into the model of ``cfg``, switch its backbone to the
    deploy form, and write the new checkpoint and config."""
    if 'RepLKNet' not in str(cfg.model.get('backbone', {}).get('type', '')):
        raise ConfigError(f'{cfg.filename}: model.backbone is not a RepLKNet')
    cfg.model.backbone.init_cfg = None  # the checkpoint brings every weight
    with DefaultScope.overwrite_default_scope(host_scope(cfg)):
        model = MODELS.build(cfg.model)
    ckpt = load_checkpoint_file(checkpoint)
    load_matching(model, ckpt.get('state_dict', ckpt),
                  f'{checkpoint} does not match {cfg.filename}')
    model.eval()
    model.backbone.switch_to_deploy()
    meta = dict(ckpt.get('meta', {}), reparameterized_from=checkpoint)
    atomic_save({'state_dict': model.state_dict(), 'meta': meta}, out)
    cfg.model.backbone.deploy = True
    cfg.load_from = out
    cfg.dump(out_config)


def main() -> None:
    args = parse_args()
    out_config = args.out_config or osp.splitext(args.out)[0] + '.py'
    check_outputs({'output checkpoint': args.out, 'output config': out_config},
                  [args.config, args.checkpoint], args.force)
    reparameterize(load_config(args.config, args.cfg_options), args.checkpoint,
                   args.out, out_config)
    print(f'wrote {args.out} and {out_config}')


if __name__ == '__main__':
    run(main)
