"""The embedded default: train and evaluate a small RepLKNet + UPerNet on CPU.

    python tools/demo.py [--work-dir work_dirs/demo] [--data-root data/synthetic_ade]
        [--cfg-options k=v ...]

Writes a synthetic segmentation data set in the ADE20K on-disk layout (if it is
not there yet), trains ``configs/demo_upernet_replk-tiny_synthetic.py`` through
the mmengine runner, evaluates it with mmseg's IoUMetric, prints the mIoU and
saves prediction overlays (ground truth | prediction) as PNG files.
"""
import argparse
import glob
import os.path as osp
import time

import cv2
import mmcv
import torch
from mmengine.runner import Runner

from mmreplk.apis import add_cfg_options, load_config, non_negative_int, run
from mmreplk.testing.synthetic import majority_miou, make_ade20k

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
CONFIG = osp.join(ROOT, 'configs', 'demo_upernet_replk-tiny_synthetic.py')


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument(
        '--work-dir', default=osp.join(ROOT, 'work_dirs', 'demo'),
        help='where logs, the checkpoint and the overlays go')
    parser.add_argument(
        '--data-root', default=osp.join(ROOT, 'data', 'synthetic_ade'),
        help='the synthetic data set (written if absent)')
    parser.add_argument(
        '--num-overlays', type=non_negative_int, default=4,
        help='how many validation predictions to save as PNG')
    add_cfg_options(parser)
    return parser.parse_args()


def ensure_data(root: str) -> None:
    """Write the synthetic ADE20K-layout set unless it is complete."""
    if glob.glob(osp.join(root, 'annotations', 'validation', '*.png')):
        print(f'data: using {root}')
        return
    make_ade20k(root, num_train=256, num_val=32, size=64, seed=0)
    print(f'data: wrote 256 training and 32 validation images to {root}')


def save_overlays(runner: Runner, out_dir: str, num: int) -> list:
    """Save ``num`` validation images with ground truth and prediction."""
    visualizer = runner.visualizer
    meta = runner.test_dataloader.dataset.metainfo
    visualizer.set_dataset_meta(classes=meta['classes'],
                                palette=meta['palette'])
    model = runner.model.eval()
    paths = []
    for i, batch in enumerate(runner.test_dataloader):
        if i == num:
            break
        with torch.no_grad():
            sample = model.test_step(batch)[0]
        image = mmcv.imread(sample.img_path, channel_order='rgb')
        path = osp.join(out_dir, f'overlay_{i}.png')
        visualizer.add_datasample(
            f'overlay_{i}', image, sample, draw_gt=True, draw_pred=True,
            out_file=path)
        # 4x larger, nearest neighbour: the images are only 64x64
        drawn = cv2.imread(path)
        cv2.imwrite(path, cv2.resize(drawn, None, fx=4, fy=4,
                                     interpolation=cv2.INTER_NEAREST))
        paths.append(path)
    return paths


def main() -> None:
    args = parse_args()
    start = time.time()
    ensure_data(args.data_root)
    cfg = load_config(CONFIG, args.cfg_options)
    cfg.work_dir = args.work_dir
    cfg.launcher = 'none'
    for split in ('train', 'val', 'test'):
        cfg[f'{split}_dataloader'].dataset.data_root = args.data_root

    runner = Runner.from_cfg(cfg)
    runner.train()
    metrics = runner.test()
    overlays = save_overlays(runner, args.work_dir, args.num_overlays)

    num_classes = len(cfg.metainfo['classes'])
    print(f'\nmIoU on the synthetic validation set: {metrics["mIoU"]:.1f}% '
          f'({num_classes} classes; predicting the most frequent class '
          f'everywhere gives {majority_miou(args.data_root, num_classes):.1f}'
          '%)')
    print('overlays (ground truth | prediction): ' + ', '.join(overlays))
    print(f'done in {(time.time() - start) / 60:.1f} min; checkpoint and '
          f'logs in {args.work_dir}')


if __name__ == '__main__':
    run(main)
