"""Effective receptive field (ERF) analysis of the RepLKNet paper (Fig. 1, Table 5).

For every image the contribution of each input pixel to the centre of the last feature map
is measured by a gradient: the ReLU'd centre pixel of the feature map is summed over
channels, back-propagated to the input, the input gradient is ReLU'd and summed over
colour channels. The maps are averaged over the images. For display and for the
high-contribution area ratio the averaged map is compressed with ``log10(x + 1)`` and
rescaled to [0, 1] (what the authors do before both), see :func:`normalize_erf`.

Only torch and numpy are needed here; image reading uses Pillow and the heat map
matplotlib, both imported lazily.
"""
import os
import os.path as osp
from typing import Iterable, List, Optional, Sequence, Tuple, Union

import numpy as np
import torch
import torch.nn as nn

from mmreplk.errors import DataNotFoundError

IMAGE_EXTENSIONS = ('.jpg', '.jpeg', '.png', '.bmp', '.tif', '.tiff', '.webp',
                    '.gif', '.ppm', '.pgm', '.pbm')
IMAGENET_MEAN = (123.675, 116.28, 103.53)
IMAGENET_STD = (58.395, 57.12, 57.375)
DEFAULT_THRESHOLDS = (0.2, 0.3, 0.5, 0.99)


def list_images(folder: str, recursive: bool = False) -> List[str]:
    """Sorted paths of the images (by extension) in ``folder``.

    Raises:
        DataNotFoundError: ``folder`` does not exist or holds no image (a
            FileNotFoundError).
    """
    if not osp.isdir(folder):
        raise DataNotFoundError(f'image folder {folder!r} does not exist')
    paths = []
    if recursive:
        for root, _, files in os.walk(folder):
            paths += [osp.join(root, f) for f in files]
    else:
        paths = [osp.join(folder, f) for f in os.listdir(folder)]
    paths = sorted(p for p in paths
                   if osp.isfile(p) and p.lower().endswith(IMAGE_EXTENSIONS))
    if not paths:
        raise DataNotFoundError(
            f'no image found in {folder!r} (looked for files ending in '
            f'{", ".join(IMAGE_EXTENSIONS)})')
    return paths


def load_image(path: str, size: Union[int, Tuple[int, int]],
               mean: Sequence[float] = IMAGENET_MEAN,
               std: Sequence[float] = IMAGENET_STD) -> torch.Tensor:
    """Read an image in any format Pillow knows as RGB, resize it to ``size``
    (an int for a square, or (H, W)) bilinearly and normalize it.

    Returns:
        Tensor of shape (3, H, W), float32.
    """
    from PIL import Image
    if isinstance(size, int):
        size = (size, size)
    with Image.open(path) as img:
        img = img.convert('RGB').resize((size[1], size[0]), Image.BILINEAR)
        arr = np.asarray(img, dtype=np.float32)
    arr = (arr - np.asarray(mean, np.float32)) / np.asarray(std, np.float32)
    return torch.from_numpy(arr.transpose(2, 0, 1).copy())


def _last_feature(out) -> torch.Tensor:
    """The last feature map of a backbone output (a tensor, or a tuple/list of them)."""
    while isinstance(out, (tuple, list)):
        out = out[-1]
    if not isinstance(out, torch.Tensor) or out.dim() != 4:
        raise TypeError('the model must return a 4-D feature map or a tuple/list '
                        f'ending with one, got {type(out)}')
    return out


def input_gradient_map(model: nn.Module, image: torch.Tensor) -> np.ndarray:
    """Contribution map of one image (3, H, W) or batch (N, 3, H, W) to the centre of
    the model's last feature map, summed over batch and colour channels -> (H, W)."""
    x = image if image.dim() == 4 else image.unsqueeze(0)
    x = x.detach().clone().requires_grad_(True)
    feat = _last_feature(model(x))
    h, w = feat.shape[-2:]
    centre = torch.relu(feat[:, :, h // 2, w // 2]).sum()
    grad, = torch.autograd.grad(centre, x, allow_unused=True)
    if grad is None:  # the centre does not depend on the input at all
        grad = torch.zeros_like(x)
    return torch.relu(grad).sum(dim=(0, 1)).detach().double().cpu().numpy()


def compute_erf(model: nn.Module,
                images: Iterable[Union[torch.Tensor, str]],
                size: Optional[Union[int, Tuple[int, int]]] = None,
                device: Union[str, torch.device, None] = None,
                progress: bool = False,
                num_images: Optional[int] = None) -> np.ndarray:
    """Average contribution map of ``images`` to the centre of the last feature map.

    The model is put in eval mode (BatchNorm uses its running statistics) and its
    parameters are frozen for the duration of the analysis (only the input gradient is
    needed); both are restored afterwards.

    Args:
        model: a backbone returning a feature map or a tuple/list of them (the last one
            is analysed).
        images: normalized tensors (3, H, W) / (N, 3, H, W), or image paths (then
            ``size`` is required and ImageNet normalization is applied).
        size: resize size for image paths.
        device: where to run (default: the model's device).
        progress: show mmengine's progress bar.
        num_images: total number of images, for the progress bar when ``images`` has
            no length.

    Returns:
        The averaged map, float64 array (H, W), not normalized.
    """
    if device is None:
        try:
            device = next(model.parameters()).device
        except StopIteration:
            device = torch.device('cpu')
    if num_images is None and hasattr(images, '__len__'):
        num_images = len(images)  # type: ignore[arg-type]
    bar = None
    if progress:
        import sys
        from mmengine.utils import ProgressBar
        bar = ProgressBar(num_images or 0, file=sys.stdout)

    was_training = model.training
    grad_flags = [(p, p.requires_grad) for p in model.parameters()]
    model.eval()
    for p, _ in grad_flags:
        p.requires_grad_(False)
    total, count = None, 0
    try:
        for item in images:
            if isinstance(item, str):
                if size is None:
                    raise ValueError('size is required to load images from paths')
                item = load_image(item, size)
            gmap = input_gradient_map(model, item.to(device))
            total = gmap if total is None else total + gmap
            count += 1
            if bar is not None:
                bar.update()
    finally:
        model.train(was_training)
        for p, flag in grad_flags:
            p.requires_grad_(flag)
    if count == 0:
        raise ValueError('compute_erf got no image')
    if bar is not None:
        bar.file.write('\n')
    return total / count


def normalize_erf(erf: np.ndarray) -> np.ndarray:
    """``log10(x + 1)`` then division by the maximum: the map shown by the heat map and
    measured by :func:`area_ratio` (as in the paper's analysis)."""
    data = np.log10(np.asarray(erf, dtype=np.float64) + 1)
    peak = data.max()
    return data / peak if peak > 0 else data


def area_ratio(erf: np.ndarray, t: float, normalize: bool = True
               ) -> Tuple[float, int]:
    """High-contribution area ratio r(t).

    The smallest square centred on pixel (H // 2, W // 2), of odd side 1, 3, 5, ...
    (clipped to the map), whose sum is more than ``t`` of the map's total; r is its area
    over the map's area.

    Args:
        erf: the averaged contribution map (H, W).
        t: fraction in (0, 1).
        normalize: apply :func:`normalize_erf` first (the paper's convention).

    Returns:
        (r, side): the ratio in [0, 1] and the side of the square in pixels (the
        unclipped side; 1.0 and the full size when no square reaches ``t``).
    """
    data = normalize_erf(erf) if normalize else np.asarray(erf, np.float64)
    h, w = data.shape
    total = data.sum()
    if total <= 0:
        return 0.0, 0
    ch, cw = h // 2, w // 2
    for half in range(max(h, w)):
        top, bottom = max(ch - half, 0), min(ch + half + 1, h)
        left, right = max(cw - half, 0), min(cw + half + 1, w)
        if data[top:bottom, left:right].sum() > t * total:
            return (bottom - top) * (right - left) / (h * w), 2 * half + 1
    return 1.0, max(h, w)


def area_ratios(erf: np.ndarray, thresholds: Sequence[float] = DEFAULT_THRESHOLDS,
                normalize: bool = True) -> dict:
    """``{t: r(t)}`` for every threshold."""
    return {t: area_ratio(erf, t, normalize)[0] for t in thresholds}


def save_heatmap(erf: np.ndarray, path: str, title: Optional[str] = None,
                 cmap: str = 'RdYlGn') -> None:
    """Save the normalized map (:func:`normalize_erf`) as a heat-map PNG."""
    plot_erf_comparison([erf], [title or ''], path, cmap=cmap)


def plot_erf_comparison(erfs: Sequence[np.ndarray], titles: Sequence[str],
                        path: str, cmap: str = 'RdYlGn') -> None:
    """Put several normalized maps side by side in one figure, with a shared colour bar."""
    import matplotlib
    matplotlib.use('Agg', force=False)
    import matplotlib.pyplot as plt
    if len(erfs) != len(titles):
        raise ValueError('one title per map is needed')
    n = len(erfs)
    fig, axes = plt.subplots(1, n, figsize=(4 * n + 0.8, 4), squeeze=False)
    im = None
    for ax, erf, title in zip(axes[0], erfs, titles):
        im = ax.imshow(normalize_erf(erf), cmap=cmap, vmin=0, vmax=1,
                       interpolation='nearest')
        ax.set_xticks([])
        ax.set_yticks([])
        if title:
            ax.set_title(title)
    fig.colorbar(im, ax=list(axes[0]), fraction=0.046 / max(n, 1) * n, pad=0.02)
    dirname = osp.dirname(osp.abspath(path))
    os.makedirs(dirname, exist_ok=True)
    fig.savefig(path, dpi=100, bbox_inches='tight')
    plt.close(fig)


def format_ratios(name: str, ratios: dict) -> str:
    """One line: ``name  t=0.2: 1.23%  t=0.3: ...``."""
    parts = [f't={t:g}: {100 * r:.2f}%' for t, r in ratios.items()]
    return f'{name}  ' + '  '.join(parts)


__all__ = [
    'IMAGE_EXTENSIONS', 'DEFAULT_THRESHOLDS', 'list_images', 'load_image',
    'input_gradient_map', 'compute_erf', 'normalize_erf', 'area_ratio',
    'area_ratios', 'save_heatmap', 'plot_erf_comparison', 'format_ratios'
]
