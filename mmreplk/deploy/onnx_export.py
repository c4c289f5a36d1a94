"""ONNX export of an export-form module (:mod:`mmreplk.deploy.export_form`) and its check
with onnxruntime: the same outputs as PyTorch at the export size and, for a dynamic-size
export, at other sizes; latency of both runtimes.

onnx, onnxruntime and onnxslim (``--simplify``) are the optional extra ``mmreplk[onnx]``;
they are imported when used. The exporter is PyTorch's TorchScript-tracing one
(``dynamo=False``), the one mmdeploy builds on.
"""
import importlib
import warnings
from typing import Callable, Dict, List, Sequence, Tuple

import numpy as np
import torch
import torch.nn as nn

from mmreplk.errors import ExportError

__all__ = ['require', 'export_onnx', 'simplify_onnx', 'check_shapes', 'random_input',
           'max_relative_error', 'compare_with_onnxruntime', 'latency_ms']

Shape = Tuple[int, int, int, int]
DYNAMIC = {0: 'batch', 2: 'height', 3: 'width'}


def require(module: str):
    """Import ``module`` or raise :class:`ExportError` naming the extra that has it."""
    try:
        return importlib.import_module(module)
    except ImportError:
        raise ExportError(f'{module} is not installed: pip install "mmreplk[onnx]" '
                          '(onnx, onnxruntime, onnxslim)') from None


def export_onnx(module: nn.Module, path: str, shape: Shape, output_names: List[str],
                dynamic: bool = False, opset: int = 17) -> None:
    """Trace ``module`` on a (N, 3, H, W) input of ``shape`` and write ``path``.
    ``dynamic``: batch, height and width are free (inputs and outputs)."""
    require('onnx')
    axes = None
    if dynamic:
        axes = {name: DYNAMIC for name in ['input'] + output_names}
    with torch.no_grad(), warnings.catch_warnings():
        # mmreplk's own trace warnings are about the channel count (the argument check of
        # RepLKNet.forward, the groups of a depthwise conv), which is fixed in the graph
        warnings.filterwarnings('ignore', category=torch.jit.TracerWarning,
                                module=r'mmreplk\.')
        torch.onnx.export(module.eval(), (random_input(shape), ), path, dynamo=False,
                          input_names=['input'], output_names=output_names,
                          dynamic_axes=axes, opset_version=opset)


def simplify_onnx(path: str) -> None:
    """Rewrite ``path`` simplified by onnxslim (constant folding, fused patterns)."""
    onnx = require('onnx')
    onnxslim = require('onnxslim')
    onnx.save(onnxslim.slim(onnx.load(path)), path)


def check_shapes(shape: Shape, dynamic: bool) -> List[Shape]:
    """The input shapes to check: the export shape; for a dynamic export also a larger
    and an odd smaller one (sizes no multiple of 32, the second at batch 2)."""
    n, c, h, w = shape
    shapes = [shape]
    if dynamic:
        shapes += [(n, c, h * 3 // 2, w * 5 // 4),
                   (n + 1, c, h * 3 // 4 | 1, (w * 3 // 4 - 1) | 1)]
    return shapes


def random_input(shape: Shape, seed: int = 0, scale: float = 255.) -> torch.Tensor:
    """A fixed random image batch, uniform in [0, scale)."""
    return torch.rand(shape, generator=torch.Generator().manual_seed(seed)) * scale


def max_relative_error(output: np.ndarray, reference: torch.Tensor) -> float:
    """max |output - reference| / max |reference|."""
    ref = reference.detach().float()
    return float((torch.from_numpy(output).float() - ref).abs().max()
                 / ref.abs().max().clamp_min(1e-12))


def _session(path: str):
    ort = require('onnxruntime')
    return ort.InferenceSession(path, providers=['CPUExecutionProvider'])


def compare_with_onnxruntime(path: str, reference: nn.Module, shapes: Sequence[Shape],
                             scale: float = 255., tolerance: float = 1e-4
                             ) -> List[Dict[str, object]]:
    """Run ``path`` with onnxruntime and ``reference`` with PyTorch on random inputs of
    each shape; raise :class:`ExportError` if an output's max relative error exceeds
    ``tolerance``. Returns one row per shape and output: shape, output, error."""
    session = _session(path)
    names = [o.name for o in session.get_outputs()]
    rows = []
    for i, shape in enumerate(shapes):
        x = random_input(shape, seed=i, scale=scale)
        with torch.no_grad():
            expected = reference.eval()(x)
        expected = expected if isinstance(expected, (tuple, list)) else (expected, )
        got = session.run(None, {'input': x.numpy()})
        for name, out, ref in zip(names, got, expected):
            if tuple(out.shape) != tuple(ref.shape):
                raise ExportError(f'{path}: output {name} has shape {tuple(out.shape)} '
                                  f'at input {shape}, PyTorch {tuple(ref.shape)}')
            rows.append(dict(shape=shape, output=name,
                             error=max_relative_error(out, ref)))
    worst = max(rows, key=lambda r: r['error'])
    if worst['error'] > tolerance:
        raise ExportError(
            f'{path} disagrees with PyTorch: max relative error {worst["error"]:.2e} '
            f'> {tolerance:g} (output {worst["output"]}, input {worst["shape"]})')
    return rows


def latency_ms(path: str, modules: Dict[str, nn.Module], shape: Shape, iters: int = 10,
               scale: float = 255.) -> Dict[str, float]:
    """Median milliseconds per call of each PyTorch module of ``modules`` and of ``path``
    in onnxruntime (key 'onnxruntime') on one input of ``shape``; the runtimes take turns,
    so that a change of machine load hits them alike."""
    from mmreplk.analysis.benchmark import time_iterations
    x = random_input(shape, scale=scale)
    session = _session(path)
    feed = {'input': x.numpy()}

    def torch_call(module: nn.Module) -> Callable[[], None]:
        def call() -> None:
            with torch.no_grad():
                module.eval()(x)
        return call

    fns = {name: torch_call(m) for name, m in modules.items()}
    fns['onnxruntime'] = lambda: session.run(None, feed)
    times: Dict[str, List[float]] = {name: [] for name in fns}
    for fn in fns.values():
        time_iterations(fn, 'cpu', warmup=2, iters=0)
    for _ in range(iters):
        for name, fn in fns.items():
            times[name] += time_iterations(fn, 'cpu', warmup=0, iters=1)
    return {name: 1e3 * float(np.median(t)) for name, t in times.items()}
