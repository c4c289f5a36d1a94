"""Synthetic images and small data sets written in the real on-disk formats: the one
home of every synthetic image the tests, the demo and the tools use.

:func:`write_images` writes unlabelled "natural-ish" images (1/f noise), for analyses
that need only input images (the ERF tool's ``--make-synthetic``). The data sets show a
few shapes (class = colour + texture + shape) on a textured background; the same scenes
are written as

* ADE20K (``images/{training,validation}/*.jpg`` + ``annotations/.../*.png``,
  0 = "other", class c stored as c + 1 for ``reduce_zero_label=True``),
* Cityscapes (``leftImg8bit/{train,val}/<city>/*_leftImg8bit.png`` +
  ``gtFine/.../*_gtFine_labelTrainIds.png``, 255 = ignore),
* COCO (``{train,val}2017/*.jpg`` + ``annotations/instances_*.json`` with
  boxes and polygon masks; the shapes use the first four categories).

:data:`CORRUPTIONS` breaks one file of such a set the ways users' files break (for the
data check's tests).

Used by the tests, ``tools/demo.py`` and ``tools/analysis_tools/analyze_erf.py``; only
numpy, OpenCV, Pillow (EXIF tags) and json.
"""
import glob
import json
import os
import os.path as osp
from typing import Callable, Dict, List, Sequence, Tuple

import cv2
import numpy as np
from PIL import Image

# (colour BGR, texture) per foreground class; class 0 is the background.
_STYLES = [((40, 160, 40), 'stripes'), ((30, 30, 200), 'dots'),
           ((200, 120, 20), 'checker'), ((20, 200, 220), 'plain')]

Shape = Tuple[int, np.ndarray]  # (foreground class 1..4, polygon N x 2)


def natural_image(rng: np.random.Generator, size: int) -> np.ndarray:
    """A "natural-ish" RGB image (H x W x 3 uint8): 1/f (pink) noise, whose power
    spectrum falls like that of natural images, with correlated colour channels and a
    few random soft-edged discs."""
    fy = np.fft.fftfreq(size)[:, None]
    fx = np.fft.rfftfreq(size)[None, :]
    freq = np.sqrt(fx**2 + fy**2)
    freq[0, 0] = 1.0 / size
    amp = 1.0 / freq

    def pink():
        phase = rng.uniform(0, 2 * np.pi, amp.shape)
        field = np.fft.irfft2(amp * np.exp(1j * phase), s=(size, size))
        return (field - field.mean()) / (field.std() + 1e-12)

    lum = pink()
    img = np.stack([lum + 0.35 * pink() for _ in range(3)], axis=-1)
    yy, xx = np.mgrid[:size, :size]
    for _ in range(rng.integers(2, 6)):
        cy, cx = rng.uniform(0, size, 2)
        radius = rng.uniform(size / 16, size / 4)
        mask = 1 / (1 + np.exp((np.hypot(yy - cy, xx - cx) - radius) / 2.0))
        img += mask[..., None] * rng.normal(0, 1.5, 3)
    img = (img - img.min()) / (img.max() - img.min() + 1e-12) * 255
    return img.astype(np.uint8)


def write_images(folder: str, num: int, size: int = 256, seed: int = 0,
                 ext: str = 'png') -> List[str]:
    """Write ``num`` images of :func:`natural_image` as ``synthetic_<i>.<ext>`` into
    ``folder`` (for when no real images can be had); returns their paths."""
    os.makedirs(folder, exist_ok=True)
    rng = np.random.default_rng(seed)
    paths = []
    for i in range(num):
        path = osp.join(folder, f'synthetic_{i:04d}.{ext}')
        cv2.imwrite(path, natural_image(rng, size)[..., ::-1])  # RGB -> OpenCV's BGR
        paths.append(path)
    return paths


def _texture(rng: np.random.Generator, size: int, kind: str) -> np.ndarray:
    yy, xx = np.mgrid[:size, :size]
    period = rng.integers(4, 7)
    if kind == 'stripes':
        pattern = ((xx + yy) // period) % 2
    elif kind == 'dots':
        pattern = ((xx % period) < 2) & ((yy % period) < 2)
    elif kind == 'checker':
        pattern = ((xx // period) + (yy // period)) % 2
    else:
        pattern = np.zeros((size, size))
    return pattern.astype(np.float32)[..., None]


def _polygon(rng: np.random.Generator, size: int) -> np.ndarray:
    """A random circle, square or triangle as an integer polygon."""
    r = rng.uniform(0.12, 0.25) * size
    cx, cy = rng.uniform(r, size - r, 2)
    kind = rng.integers(3)
    n = (24, 4, 3)[kind]
    start = rng.uniform(0, 2 * np.pi)
    angles = start + np.arange(n) * 2 * np.pi / n
    pts = np.stack([cx + r * np.cos(angles), cy + r * np.sin(angles)], 1)
    return np.round(pts).astype(np.int32)


def make_scene(rng: np.random.Generator, size: int,
               num_shapes: Tuple[int, int] = (1, 4)
               ) -> Tuple[np.ndarray, np.ndarray, List[Shape]]:
    """Draw one scene.

    Returns:
        ``(image HxWx3 uint8 BGR, label map HxW uint8 with 0 = background
        and 1..4 = shape classes, shapes in drawing order)``.
    """
    noise = cv2.resize(
        rng.normal(0, 1, (size // 8 + 1, size // 8 + 1)).astype(np.float32),
        (size, size))
    base = 110 + 25 * noise[..., None] + 20 * _texture(rng, size, 'checker')
    image = np.repeat(base, 3, axis=2)
    labels = np.zeros((size, size), np.uint8)
    shapes: List[Shape] = []
    for _ in range(rng.integers(num_shapes[0], num_shapes[1] + 1)):
        cls = int(rng.integers(1, len(_STYLES) + 1))
        colour, kind = _STYLES[cls - 1]
        pts = _polygon(rng, size)
        mask = np.zeros((size, size), np.uint8)
        cv2.fillPoly(mask, [pts], 1)
        fill = (np.array(colour, np.float32) + rng.normal(0, 12, 3)) * (
            0.6 + 0.4 * _texture(rng, size, kind))
        image[mask > 0] = fill[mask > 0]
        labels[mask > 0] = cls
        shapes.append((cls, pts))
    image += rng.normal(0, 6, image.shape)
    return np.clip(image, 0, 255).astype(np.uint8), labels, shapes


def _splits(num_train: int, num_val: int) -> Dict[str, int]:
    return {'train': num_train, 'val': num_val}


def make_ade20k(root: str, num_train: int = 4, num_val: int = 2,
                size: int = 64, seed: int = 0) -> str:
    """Write an ADE20K-layout data set (background = class 1, shapes 2..5,
    a 2-pixel frame of 0 = "other") under ``root``; returns ``root``."""
    rng = np.random.default_rng(seed)
    for split, n in _splits(num_train, num_val).items():
        name = 'training' if split == 'train' else 'validation'
        for d in ('images', 'annotations'):
            os.makedirs(osp.join(root, d, name), exist_ok=True)
        for i in range(n):
            image, labels, _ = make_scene(rng, size)
            ann = labels + 1
            ann[:2], ann[-2:], ann[:, :2], ann[:, -2:] = 0, 0, 0, 0
            stem = f'ADE_{name[:5]}_{i:08d}'
            cv2.imwrite(osp.join(root, 'images', name, stem + '.jpg'), image,
                        [cv2.IMWRITE_JPEG_QUALITY, 95])
            cv2.imwrite(osp.join(root, 'annotations', name, stem + '.png'),
                        ann)
    return root


def make_cityscapes(root: str, num_train: int = 4, num_val: int = 2,
                    size: int = 64, seed: int = 0) -> str:
    """Write a Cityscapes-layout data set (train ids 0..4, frame = 255)."""
    rng = np.random.default_rng(seed)
    for split, n in _splits(num_train, num_val).items():
        city = 'aachen' if split == 'train' else 'frankfurt'
        img_dir = osp.join(root, 'leftImg8bit', split, city)
        ann_dir = osp.join(root, 'gtFine', split, city)
        os.makedirs(img_dir, exist_ok=True)
        os.makedirs(ann_dir, exist_ok=True)
        for i in range(n):
            image, labels, _ = make_scene(rng, size)
            labels[:2], labels[-2:] = 255, 255
            stem = f'{city}_{i:06d}_000019'
            cv2.imwrite(osp.join(img_dir, stem + '_leftImg8bit.png'), image)
            cv2.imwrite(
                osp.join(ann_dir, stem + '_gtFine_labelTrainIds.png'), labels)
    return root


def _coco_annotation(ann_id: int, image_id: int, cls: int,
                     pts: np.ndarray) -> dict:
    # category ids are 1..N in the order of ``categories``
    x0, y0 = pts.min(0)
    x1, y1 = pts.max(0)
    return dict(
        id=ann_id,
        image_id=image_id,
        category_id=cls,
        segmentation=[pts.astype(float).flatten().tolist()],
        area=float(cv2.contourArea(pts)),
        bbox=[float(x0), float(y0), float(x1 - x0), float(y1 - y0)],
        iscrowd=0)


def make_coco(root: str, categories: Sequence[str], num_train: int = 4,
              num_val: int = 2, size: int = 128, seed: int = 0) -> str:
    """Write a COCO-layout instance data set, one shape per image.

    ``categories`` should be the model's class names (e.g. mmdet's
    ``CocoDataset.METAINFO['classes']``): the metric maps every predicted
    label to one of them.
    """
    if len(categories) < len(_STYLES):
        raise ValueError(f'need at least {len(_STYLES)} categories')
    rng = np.random.default_rng(seed)
    os.makedirs(osp.join(root, 'annotations'), exist_ok=True)
    categories = [dict(id=i + 1, name=n, supercategory='object')
                  for i, n in enumerate(categories)]
    ann_id = 1
    for split, n in _splits(num_train, num_val).items():
        folder = f'{split}2017'
        os.makedirs(osp.join(root, folder), exist_ok=True)
        images, annotations = [], []
        for i in range(n):
            image, _, shapes = make_scene(rng, size, num_shapes=(1, 1))
            image_id = i + 1
            file_name = f'{image_id:012d}.jpg'
            cv2.imwrite(osp.join(root, folder, file_name), image)
            images.append(
                dict(id=image_id, file_name=file_name, width=size,
                     height=size))
            for cls, pts in shapes:
                annotations.append(
                    _coco_annotation(ann_id, image_id, cls, pts))
                ann_id += 1
        with open(osp.join(root, 'annotations',
                           f'instances_{folder}.json'), 'w') as f:
            json.dump(
                dict(images=images, annotations=annotations,
                     categories=categories), f)
    return root


def majority_miou(root: str, num_classes: int) -> float:
    """mIoU (in %) of predicting the most frequent class everywhere on the validation
    split of an ADE20K-layout set (``reduce_zero_label``: file value c is class c - 1):
    the baseline a model that learns nothing reaches. As mmseg's IoUMetric, classes
    absent from the ground truth (and not predicted) are left out of the mean."""
    counts = np.zeros(256, np.int64)
    for path in glob.glob(osp.join(root, 'annotations', 'validation', '*.png')):
        counts += np.bincount(cv2.imread(path, cv2.IMREAD_GRAYSCALE).ravel(),
                              minlength=256)
    counts = counts[1:num_classes + 1]
    return 100.0 * counts.max() / counts.sum() / np.count_nonzero(counts)


# --------------------------------------------------------------------------- corruption
def _rewrite(path: str, change: Callable[[np.ndarray], np.ndarray]) -> None:
    """Decode ``path`` as stored (no EXIF turn), change the array, encode it back in
    the same format."""
    cv2.imwrite(path, change(cv2.imread(path, cv2.IMREAD_UNCHANGED)))


def _keep_part(path: str, fraction: float) -> None:
    with open(path, 'rb') as f:
        data = f.read()
    with open(path, 'wb') as f:
        f.write(data[:int(len(data) * fraction)])


def _set_value(value: int) -> Callable[[np.ndarray], np.ndarray]:
    def change(array: np.ndarray) -> np.ndarray:
        array = array.copy()
        array[array.shape[0] // 2, array.shape[1] // 2] = value
        return array
    return change


def _orientation(value: int) -> Callable[[str], None]:
    def write(path: str) -> None:
        with Image.open(path) as image:
            exif = image.getexif()
            exif[0x0112] = value  # EXIF orientation: 3 = turned 180, 6 = turned 90
            image.save(path, exif=exif, quality=95)
    return write


def _loop(path: str) -> None:
    os.remove(path)
    os.symlink(osp.basename(path), path)  # a link to itself


def _write(text: str) -> Callable[[str], None]:
    def write(path: str) -> None:
        with open(path, 'w') as f:
            f.write(text)
    return write


#: Ways one image or label file breaks: name -> function(path) changing the file in
#: place. ``value <n>`` sets one pixel of a label map to n (for values beyond the
#: classes); ``exif <n>`` gives a JPEG the EXIF orientation n, pixels unchanged.
CORRUPTIONS: Dict[str, Callable[[str], None]] = {
    'truncated': lambda path: _keep_part(path, 0.6),
    'empty': _write(''),
    'not an image': _write('<html>not found</html>'),
    'symlink loop': _loop,
    'three channels': lambda path: _rewrite(
        path, lambda a: np.repeat(a[..., None], 3, 2) if a.ndim == 2 else a),
    'smaller': lambda path: _rewrite(path, lambda a: a[:-4]),
    'value 100': lambda path: _rewrite(path, _set_value(100)),
    'value 200': lambda path: _rewrite(path, _set_value(200)),
    'exif 3': _orientation(3),
    'exif 6': _orientation(6),
}
