"""Export a trained RepLKNet segmentor (or its backbone) to ONNX and check the file with
onnxruntime.

    python tools/deployment/pytorch2onnx.py CONFIG CHECKPOINT OUT.onnx [--shape H W]
        [--dynamic] [--simplify] [--backbone-only] [--opset 17] [--latency-iters 10]
        [--cfg-options k=v ...]

The model is re-parameterized (no BatchNorm left) and traced on its stock convolution path
(mmreplk/deploy/export_form.py says why). A segmentor is exported from the image as loaded
(N, 3, H, W, float BGR 0-255 when the config converts to RGB) to the logits at the input
size (N, classes, H, W): the data preprocessor's normalization is in the graph, the
sliding-window / flip test modes are not. --backbone-only exports the RepLKNet backbone,
from a normalized image to its feature maps; it is the only export of an mmdet config
(detectors' post-processing and NMS are mmdeploy's business).

The file is then run with onnxruntime next to PyTorch (the model as trained; a segmentor
through mmseg's own inference code) on random inputs at the export size and, with
--dynamic, at two other sizes; a max relative error above 1e-4 fails. The latency of both
runtimes is printed side by side: PyTorch runs the re-parameterized model on mmreplk's
default path (CPU strategies, channels_last) and on the stock path the file was traced
from. --shape defaults to the config's crop_size, else 512 512. Needs the optional extra:
pip install "mmreplk[onnx]".
"""
import argparse
import copy
from typing import Dict

from mmreplk.analysis.complexity import build_from_config
from mmreplk.apis import (add_cfg_options, add_force, check_checkpoint, check_outputs,
                          host_scope, load_config, non_negative_int, positive_int, run)
from mmreplk.deploy.export_form import (BackboneExport, MMSegInference, SegmentorExport,
                                        prepare_for_export, set_dwconv_path)
from mmreplk.deploy.onnx_export import (check_shapes, compare_with_onnxruntime,
                                        export_onnx, latency_ms, require, simplify_onnx)
from mmreplk.errors import CheckpointError, ConfigError
from mmreplk.models import load_matching
from mmreplk.utils import load_checkpoint_file

TOLERANCE = 1e-4


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split('\n\n')[0],
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('config', help='mmseg config (mmdet: with --backbone-only)')
    parser.add_argument('checkpoint', help='the trained checkpoint of the config')
    parser.add_argument('out', help='output .onnx file')
    parser.add_argument('--shape', type=positive_int, nargs=2, metavar=('H', 'W'),
                        help="export input size (default: the config's crop_size, "
                        'else 512 512)')
    parser.add_argument('--dynamic', action='store_true',
                        help='free batch, height and width (checked at 3 sizes)')
    parser.add_argument('--simplify', action='store_true',
                        help='simplify the graph with onnxslim')
    parser.add_argument('--backbone-only', action='store_true',
                        help='export the RepLKNet backbone only')
    parser.add_argument('--opset', type=positive_int, default=17, help='ONNX opset (17)')
    parser.add_argument('--latency-iters', type=non_negative_int, default=10,
                        help='timed runs per runtime (0: no latency)')
    add_force(parser)
    add_cfg_options(parser)
    return parser.parse_args(argv)


def load_model(cfg, checkpoint: str):
    """The config's model (eval, SyncBN as BN, no gradient checkpointing) with the
    checkpoint's weights, loaded strictly."""
    model, task = build_from_config(cfg)
    ckpt = load_checkpoint_file(checkpoint)
    state = ckpt.get('state_dict', ckpt) if isinstance(ckpt, dict) else None
    if not isinstance(state, dict):
        raise CheckpointError(f'{checkpoint} holds no state dict')
    load_matching(model, state, f'{checkpoint} does not match {cfg.filename}')
    return model.eval(), task


def main(argv=None) -> Dict[str, object]:
    args = parse_args(argv)
    cfg = load_config(args.config, args.cfg_options)
    scope = host_scope(cfg)
    if scope == 'mmdet' and not args.backbone_only:
        raise ConfigError(
            f'{args.config} is an mmdet detector: export detectors with mmdeploy '
            '(https://github.com/open-mmlab/mmdeploy), which handles their '
            'post-processing and NMS; --backbone-only exports the RepLKNet backbone')
    check_checkpoint(args.checkpoint, 'checkpoint')
    check_outputs({'output ONNX file': args.out}, [args.config, args.checkpoint],
                  args.force)
    require('onnx')
    require('onnxruntime')
    if args.simplify:
        require('onnxslim')
    h, w = args.shape or cfg.get('crop_size') or (512, 512)
    shape = (1, 3, int(h), int(w))

    model, _ = load_model(cfg, args.checkpoint)
    if args.backbone_only:
        reference = BackboneExport(model.backbone)
        exported = BackboneExport(prepare_for_export(model.backbone))
        names = [f'stage{i}' for i in model.backbone.out_indices]
        what, scale = 'backbone: normalized image -> feature maps', 1.
    else:
        reference = MMSegInference(model)
        exported = SegmentorExport(prepare_for_export(model))
        names = ['logits']
        what, scale = 'segmentor: image -> logits', 255.

    export_onnx(exported, args.out, shape, names, dynamic=args.dynamic,
                opset=args.opset)
    if args.simplify:
        simplify_onnx(args.out)
    size = 'x'.join(map(str, shape))
    print(f'wrote {args.out} ({what}; input {size}, '
          f'{"dynamic batch / height / width" if args.dynamic else "fixed size"}, '
          f'opset {args.opset}{", simplified" if args.simplify else ""})')

    rows = compare_with_onnxruntime(args.out, reference,
                                    check_shapes(shape, args.dynamic), scale=scale,
                                    tolerance=TOLERANCE)
    print(f'onnxruntime vs PyTorch (the model as trained'
          f'{"" if args.backbone_only else ", mmseg inference"}), max relative error '
          f'(limit {TOLERANCE:g}):')
    for r in rows:
        print(f'  input {"x".join(map(str, r["shape"])):<14} {r["output"]:<8} '
              f'{r["error"]:.1e}')

    latency = None
    if args.latency_iters > 0:
        default_path = copy.deepcopy(exported)
        set_dwconv_path(default_path, stock=False)
        latency = latency_ms(args.out, {'pytorch': default_path, 'pytorch_stock': exported},
                             shape, args.latency_iters, scale=scale)
        print(f'latency at {size}, batch {shape[0]}, median of {args.latency_iters} runs '
              f'(ms): PyTorch {latency["pytorch"]:.1f} (re-parameterized, default path) | '
              f'PyTorch {latency["pytorch_stock"]:.1f} (stock path, the exported ops) | '
              f'onnxruntime {latency["onnxruntime"]:.1f}')
    return dict(rows=rows, latency=latency, shape=shape)


if __name__ == '__main__':
    run(main)
