"""Check the data sets of a config before training on them.

Examples::

    python tools/analysis_tools/check_dataset.py configs/upernet_replk31b_ade20k.py
    python tools/analysis_tools/check_dataset.py configs/cascade_mask_rcnn_replk31b_coco.py --split val --full

Each sample is decoded as training decodes it: by the loading transforms of the split's
own pipeline (``LoadImageFromFile``, ``LoadAnnotations``, with their arguments; EXIF
orientation, ``reduce_zero_label`` and a class subset's label map included).
Segmentation: images and label maps pair up and load; label maps are one channel, of
their image's size and orientation, with values below the classes of the data set and
of the model's heads (``num_classes``) or the ignore index. COCO: the annotation file
has the fields mmdet reads, of the right types, unique ids; its images exist, load and
agree in size; boxes are not negative and lie inside their image; category ids are
declared and their classes below the heads' ``num_classes``; zero-size boxes the data
set skips are counted in the summary. No split is empty. The quick check (the default,
what train.py and test.py run) pairs and counts every file and decodes a sample (the
summary says how many); ``--full`` decodes everything, with a progress bar. Problems:
one line per kind with the count and the first paths, exit status 1.
"""
import argparse

from mmreplk.apis import add_cfg_options, check_data, check_data_sets, load_config, run


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('config', help='mmseg / mmdet config file')
    p.add_argument('--split', nargs='+', default=['train', 'val'],
                   choices=['train', 'val', 'test'], help='splits to check')
    p.add_argument('--full', action='store_true',
                   help='decode every image and label map, not a sample')
    add_cfg_options(p)
    return p.parse_args(argv)


def main(argv=None) -> str:
    args = parse_args(argv)
    cfg = load_config(args.config, args.cfg_options)
    check_data(cfg, tuple(args.split))  # the folders exist (with how to get them)
    summary = check_data_sets(cfg, args.split, full=args.full, progress=args.full)
    print(summary)
    return summary


if __name__ == '__main__':
    run(main)
