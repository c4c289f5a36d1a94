"""The effective-receptive-field analysis of ``tools/analysis_tools/analyze_erf.py``: the
models it compares (RepLKNet archs, mmseg's ResNets), their weights from any of the
formats they are published in, and the run over a folder of images."""
import os.path as osp
import re
from typing import Callable, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np
import torch.nn as nn

from mmreplk.errors import CheckpointError

from .erf import (area_ratios, compute_erf, format_ratios, plot_erf_comparison,
                  save_heatmap)

# what surrounds a backbone's keys in mmengine / mmseg / mmdet / DDP checkpoints
REVISE_KEYS = [(r'^module\.', ''), (r'^backbone\.', '')]


def load_backbone_weights(model: nn.Module, path: str) -> None:
    """Load ``path`` into ``model``: a RepLKNet through :func:`mmreplk.models.
    load_pretrained` (official, mmpretrain and downstream formats); any other backbone
    with mmengine's ``load_checkpoint`` (``module.`` / ``backbone.`` prefixes removed),
    extra keys (heads) ignored, a missing one a :class:`CheckpointError`."""
    from mmengine.runner import load_checkpoint

    from mmreplk.models import RepLKNet, load_pretrained
    if isinstance(model, RepLKNet):  # every published RepLKNet format
        load_pretrained(model, path)
        return
    missing = []
    hook = model.register_load_state_dict_post_hook(
        lambda module, keys: missing.extend(keys.missing_keys))
    try:
        load_checkpoint(model, path, map_location='cpu', revise_keys=REVISE_KEYS)
    finally:
        hook.remove()
    missing = sorted({k for k in missing if not k.endswith('num_batches_tracked')})
    if missing:
        raise CheckpointError(f'{len(missing)} weights of the model are not in {path}, '
                              f'e.g. {missing[:5]}')


def build_replknet(arch: Union[str, dict], dwconv_impl: Optional[str] = None) -> nn.Module:
    """A RepLKNet returning its last stage."""
    from mmreplk.models import RepLKNet
    kwargs = dict(arch=arch, out_indices=(3, ))
    if dwconv_impl is not None:
        kwargs['dwconv_impl'] = dwconv_impl
    return RepLKNet(**kwargs)


def build_resnet(depth: int) -> nn.Module:
    """mmseg's ResNet (mmdet's without mmseg) returning its last stage."""
    try:
        from mmseg.models.backbones import ResNet
    except ImportError:
        from mmdet.models.backbones import ResNet
    return ResNet(depth=depth, out_indices=(3, ))


def _safe(name: str) -> str:
    return re.sub(r'[^A-Za-z0-9._-]+', '_', name).strip('_') or 'model'


def report(name: str, erf: np.ndarray, thresholds: Sequence[float]) -> Dict[str, float]:
    """Print and return the high-contribution area ratios r(t) of ``erf``."""
    ratios = area_ratios(erf, thresholds)
    print(format_ratios(f'{name:<12}', ratios))
    return {str(t): r for t, r in ratios.items()}


def analyse(jobs: List[Tuple[str, Callable[[], nn.Module]]], paths: List[str],
            size: Union[int, Tuple[int, int]], out_dir: str, thresholds: Sequence[float],
            checkpoint: Optional[str] = None, device: str = 'cpu',
            progress: bool = True) -> Dict[str, Dict[str, float]]:
    """The ERF of each ``(name, build)`` model over ``paths``: saved as ``erf_NAME.npy``
    and a heat map in ``out_dir`` (and a side-by-side figure for several), and r(t)
    per model."""
    erfs, titles, results = [], [], {}
    for name, build in jobs:
        model = build()
        if checkpoint:
            load_backbone_weights(model, checkpoint)
        model.to(device)
        model.eval()  # mmseg's ResNet.train() returns None: no chaining
        print(f'[{name}]')
        erf = compute_erf(model, paths, size=size, device=device, progress=progress)
        np.save(osp.join(out_dir, f'erf_{_safe(name)}.npy'), erf)
        save_heatmap(erf, osp.join(out_dir, f'erf_{_safe(name)}.png'), title=name)
        erfs.append(erf)
        titles.append(name)
        del model
    print('high-contribution area ratio r(t) (percent of the input area):')
    for name, erf in zip(titles, erfs):
        results[name] = report(name, erf, thresholds)
    if len(erfs) > 1:
        plot_erf_comparison(erfs, titles, osp.join(out_dir, 'erf_comparison.png'))
    print(f'saved maps and heat maps under {out_dir}')
    return results


def compare_saved(npys: Sequence[str], titles: Sequence[str], out_dir: str,
                  thresholds: Sequence[float]) -> Dict[str, Dict[str, float]]:
    """r(t) of saved ERF maps and their side-by-side figure in ``out_dir``."""
    erfs = [np.load(p) for p in npys]
    print('high-contribution area ratio r(t):')
    results = {t: report(t, e, thresholds) for t, e in zip(titles, erfs)}
    path = osp.join(out_dir, 'erf_comparison.png')
    plot_erf_comparison(erfs, titles, path)
    print(f'saved {path}')
    return results


__all__ = ['REVISE_KEYS', 'analyse', 'build_replknet', 'build_resnet', 'compare_saved',
           'load_backbone_weights', 'report']
