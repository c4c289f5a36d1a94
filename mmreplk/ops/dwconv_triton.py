"""Triton CUDA-core kernels for the stride-1 'same' depthwise convolution.

Import this module only when Triton is importable (see :func:`triton_available`). The
kernels read contiguous NCHW tensors of any float dtype and accumulate in fp32. Their design
(see docs/dwconv.md, "GPU path") is driven by the static SASS model of
:mod:`mmreplk.ops.kernel_model`: the innermost loop should be almost only FFMA.

* Forward: a program owns G planes (same channel, consecutive images) x BH output rows x
  T*B columns; each of its T*G threads owns B adjacent columns of all BH rows in all its
  registers. It walks the input rows that meet the tile (clipped to the map). Per input row
  a thread loads its window of B + Kw - 1 input columns once, with aligned vector loads, and
  every tap (kernel column j, output column u) reads ``window[u + j]`` from a register: the
  column shift costs nothing. The kernel rows are handled by an outer product with a
  column of ``M[c, rr, j, :]``, the weight expanded for a BH-row tile (``M[c, rr, j, r] =
  w[c, rr - r, j]``, zero outside the kernel; built once per call, fp32, no mask, aligned
  vector loads, the same for every thread). Each input value feeds BH * Kw FMAs, each
  weight vector load (BH values) B * BH FMAs.
* Input gradient: the forward kernel with the weight flipped in both axes.
* Weight gradient: a split reduction with the same register window. A program owns G
  planes x a chunk of HCH output rows x T*B columns and BI kernel rows x all Kw kernel
  columns of one channel; per input row it loads the window once and, for each of its BI
  kernel rows, B output-gradient values that pair with it, and accumulates BI x Kw partial
  sums per thread (Kw*B FMAs per gradient load). Partial sums land in a (splits, C, Kh, Kw)
  fp32 buffer that is summed afterwards (deterministic, no atomics).
* Row bands (R > 1, for batch 1-2): R of a program's G lane groups take consecutive bands
  of BH (HCH) rows of one image instead of R images, so one image fills the lanes and the
  grid keeps enough programs; rows off the map are masked per lane.

The configs are autotuned over a small space, pruned per shape (:func:`fwd_configs`,
:func:`wgrad_configs`). The kernels are built at first use (:func:`kernels`), compiled or,
under ``TRITON_INTERPRET=1`` at call time, interpreted with one config.
"""
import functools
import types
from typing import List, Optional, Sequence, Tuple

import torch
import triton
import triton.language as tl

from .aot import AotKernel, Shape
from .triton_jit import build_kernels, interpreting

MB = tl.constexpr(4)  # rows of the expanded weight (the largest BH of the spaces)
_MB = MB.value
ELEMENT_TYPES = {'fp32': torch.float32, 'bf16': torch.bfloat16, 'fp16': torch.float16}

# Tuning spaces. Forward / input gradient: (BH, B, G, num_warps, R); wgrad: (BI, B, G,
# num_warps, HCH, R). A program has G lane groups of T = 32 * num_warps / G threads along
# the columns; R of them are row bands of one image (R = 1: G images), so a program spans
# G / R images and R bands of BH (wgrad: HCH) rows. Bands fill the GPU at batch 1-2.
FWD_SPACE: Tuple[Tuple[int, ...], ...] = (
    (4, 4, 1, 1, 1), (2, 8, 2, 1, 1),                     # 128 columns per program
    (4, 4, 2, 1, 1), (2, 8, 4, 1, 1), (4, 4, 2, 1, 2),    # 64
    (4, 4, 4, 1, 1), (2, 8, 8, 1, 1), (4, 4, 4, 1, 2), (4, 4, 4, 1, 4),   # 32
    (4, 4, 8, 1, 1), (2, 8, 16, 1, 1), (4, 4, 8, 1, 4), (2, 4, 8, 1, 8),  # 16
)
WGRAD_SPACE: Tuple[Tuple[int, ...], ...] = (
    (2, 8, 2, 1, 64, 1), (2, 8, 4, 1, 64, 1), (2, 8, 8, 1, 32, 1), (2, 8, 16, 1, 16, 1),
    (2, 8, 2, 1, 32, 2), (2, 8, 4, 1, 16, 2), (2, 8, 4, 1, 16, 4), (2, 8, 8, 1, 8, 4),
    (2, 8, 8, 1, 4, 8), (2, 8, 16, 1, 2, 8),
)
# Programs that fill an H100 twice (132 SMs x 16 one-warp programs, which saturate an SM's
# issue rate, x 2): below it, configs with more row bands are tuned too
FILL_PROGRAMS = 2 * 132 * 16
LANES_KEPT = 0.75  # a wider tile that idles up to 25 % more lanes loads fewer halos
INTERPRET_FWD = (4, 2, 2, 4, 1)
INTERPRET_WGRAD = (2, 2, 2, 4, 16, 1)


def _vec(w: int) -> int:
    """Columns per vector load: rows start 16-byte aligned when W is a multiple of 4."""
    return 4 if w % 4 == 0 else 2 if w % 2 == 0 else 1


def _tile_width(cfg: Sequence[int]) -> int:
    """Columns a program covers: T = 32 * num_warps / G threads x B columns each."""
    return 32 * cfg[3] // cfg[2] * cfg[1]


def _keep(space, shape: Shape, meta) -> list:
    """The configs of ``space`` that can be good for a map: those whose fraction of lanes
    doing real outputs (not idle on columns past the map, missing images or rows past the
    map) is at least :data:`LANES_KEPT` of the best; among them the widest tiles (fewer
    programs, fewer halo loads); of those the ones with the fewest row bands, adding
    configs with more bands while the grid has fewer than :data:`FILL_PROGRAMS` programs."""
    n, c, h, w, k = shape

    def lanes_used(cfg):
        m = meta(cfg)
        bw, images = _tile_width(cfg), m['G'] // m['R']
        rows = m['R'] * m.get('HCH', m.get('BH'))  # rows past the map idle a band's lanes
        return (n / (triton.cdiv(n, images) * images) * w / (triton.cdiv(w, bw) * bw)
                * (1.0 if m['R'] == 1 else h / (triton.cdiv(h, rows) * rows)))

    def programs(cfg):
        m = meta(cfg)
        rows = m['R'] * m.get('HCH', m.get('BH'))
        return (c * triton.cdiv(k, m.get('BI', k)) * triton.cdiv(n, m['G'] // m['R'])
                * triton.cdiv(h, rows) * triton.cdiv(w, _tile_width(cfg)))
    best = max(lanes_used(cfg) for cfg in space)
    fits = [cfg for cfg in space if lanes_used(cfg) >= best * LANES_KEPT]
    width = max(_tile_width(cfg) for cfg in fits)
    widest = [cfg for cfg in fits if _tile_width(cfg) == width]
    kept = []
    for r in sorted({meta(cfg)['R'] for cfg in widest}):
        kept += [cfg for cfg in widest if meta(cfg)['R'] == r]
        if max(programs(cfg) for cfg in kept) >= FILL_PROGRAMS:
            break
    return kept


def config_label(kernel: str, cfg: Sequence[int]) -> str:
    """The short label of a forward ('fwd', 'dgrad') or weight-gradient ('wgrad') config."""
    if kernel == 'wgrad':
        bi, b, g, warps, hch, r = cfg
        label = f'BI={bi},B={b},G={g},w{warps},HCH={hch}'
    else:
        bh, b, g, warps, r = cfg
        label = f'BH={bh},B={b},G={g},w{warps}'
    return label + (f',R={r}' if r > 1 else '')


def fwd_configs(shape: Shape) -> List[Tuple[int, ...]]:
    """The forward / input-gradient configs kept for a shape (N, C, H, W, K)."""
    return _keep(FWD_SPACE, shape, _fwd_meta)


def wgrad_configs(shape: Shape) -> List[Tuple[int, ...]]:
    """The weight-gradient configs kept for a shape (N, C, H, W, K)."""
    return _keep(WGRAD_SPACE, shape, _wgrad_meta)


# ------------------------------------------------------------------------------- kernels


def _unpack(v, VEC: tl.constexpr):
    """The VEC entries of the last axis of ``v`` (a thread's registers) as a tuple."""
    if VEC == 1:
        return (tl.reshape(v, v.shape[:-1]),)
    elif VEC == 2:
        a, b = tl.split(v)
        return a, b
    elif VEC == 4:
        a, b = tl.split(tl.reshape(v, v.shape[:-1] + (2, 2)))
        x0, x2 = tl.split(a)
        x1, x3 = tl.split(b)
        return x0, x1, x2, x3
    else:
        a, b = tl.split(tl.reshape(v, v.shape[:-1] + (4, 2)))
        a0, a1, a2, a3 = _unpack(a, 4)
        b0, b1, b2, b3 = _unpack(b, 4)
        return a0, b0, a1, b1, a2, b2, a3, b3


def _lanes(plane0, w0, N, C, H, W, c, G: tl.constexpr, T: tl.constexpr, B: tl.constexpr,
           R: tl.constexpr):
    """Per lane of a program (G lane groups x T column groups; R groups per image): its
    plane's offset (int64), its first column, whether its plane exists and its row band."""
    lane = tl.arange(0, G * T)
    group = lane // T
    plane = plane0 + group // R
    base = (plane.to(tl.int64) * C + c) * H * W
    return base, w0 + lane % T * B, plane < N, group % R


def _window(row_ptr, start, ok, W, VEC: tl.constexpr, NV: tl.constexpr):
    """A thread's input window: NV aligned VEC-wide loads from ``row_ptr`` at columns
    ``start`` + [0, NV * VEC) (zero outside [0, W) and where ``ok`` is false), as a tuple of
    NV * VEC lane tensors, one per column, in fp32."""
    cols = start[:, None] + tl.arange(0, VEC)[None, :]
    xs = ()
    for v in tl.static_range(NV):
        col = cols + v * VEC
        xv = tl.load(row_ptr[:, None] + col, mask=ok[:, None] & (col >= 0) & (col < W),
                     other=0.)
        xs = xs + _unpack(xv.to(tl.float32), VEC)
    return xs


def _fwd_kernel(x_ptr, m_ptr, b_ptr, y_ptr, N, C, H, WV, HAS_BIAS,
                KH: tl.constexpr, KW: tl.constexpr, VEC: tl.constexpr, BH: tl.constexpr,
                B: tl.constexpr, G: tl.constexpr, T: tl.constexpr, R: tl.constexpr):
    W = WV * VEC  # rows start VEC-aligned (WV = W / VEC)
    PH: tl.constexpr = KH // 2
    PW: tl.constexpr = KW // 2
    PA: tl.constexpr = (PW + VEC - 1) // VEC * VEC  # left halo rounded up to whole vectors
    NV: tl.constexpr = (PA + B + PW + VEC - 1) // VEC
    pid = tl.program_id(0)
    c = pid % C
    h0 = tl.program_id(1) * (BH * R)
    base, col0, ok, band = _lanes(pid // C * (G // R), tl.program_id(2) * (T * B), N, C, H, W,
                                  c, G, T, B, R)
    h_lane = h0 + band * BH  # each lane's first output row
    rows = tl.arange(0, BH)
    m_c = m_ptr + c * ((MB + KH - 1) * KW * MB)
    acc = ()
    for u in tl.static_range(B):
        acc = acc + (tl.zeros((BH, G * T), dtype=tl.float32),)
    for s in range(BH + KH - 1):  # the input rows that meet the tile (a constant trip
        top = h0 - PH + s          # count: see docs); rows off the map are skipped for
        if (top + (R - 1) * BH >= 0) & (top < H):  # all bands, masked for some
            rho = h_lane - PH + s
            xs = _window(x_ptr + base + rho * W, col0 - PA, ok & (rho >= 0) & (rho < H), W,
                         VEC, NV)
            m_row = m_c + s * (KW * MB)
            for j in tl.static_range(KW):
                wj = tl.load(m_row + j * MB + rows)[:, None]
                new = ()
                for u in tl.static_range(B):
                    new = new + (acc[u] + wj * xs[u + j + PA - PW][None, :],)
                acc = new
    oh = h_lane[None, :] + rows[:, None]
    out = y_ptr + base[None, :] + oh * W
    for u in tl.static_range(B):
        res = acc[u]
        if HAS_BIAS != 0:  # a run-time flag: one binary serves forward and input gradient
            res += tl.load(b_ptr + c).to(tl.float32)
        ow = (col0 + u)[None, :]
        tl.store(out + ow, res.to(y_ptr.dtype.element_ty),
                 mask=(oh < H) & ok[None, :] & (ow < W))


def _wgrad_kernel(x_ptr, g_ptr, part_ptr, N, C, H, WV,
                  KH: tl.constexpr, KW: tl.constexpr, VEC: tl.constexpr, BI: tl.constexpr,
                  B: tl.constexpr, G: tl.constexpr, T: tl.constexpr, HCH: tl.constexpr,
                  R: tl.constexpr):
    W = WV * VEC
    PH: tl.constexpr = KH // 2
    PW: tl.constexpr = KW // 2
    PA: tl.constexpr = (PW + VEC - 1) // VEC * VEC
    NV: tl.constexpr = (PA + B + PW + VEC - 1) // VEC
    N_IB: tl.constexpr = (KH + BI - 1) // BI
    GV: tl.constexpr = B if B < VEC else VEC  # output-gradient columns per vector load
    c = tl.program_id(0) // N_IB
    i0 = tl.program_id(0) % N_IB * BI
    n_hc = tl.cdiv(H, HCH * R)
    h_first = tl.program_id(1) % n_hc * (HCH * R)
    base, col0, ok, band = _lanes(tl.program_id(1) // n_hc * (G // R),
                                  tl.program_id(2) * (T * B), N, C, H, W, c, G, T, B, R)
    h_lo = h_first + band * HCH  # each lane's chunk of output rows
    h_hi = tl.minimum(h_lo + HCH, H)
    acc = ()
    for t in tl.static_range(BI * KW):
        acc = acc + (tl.zeros((G * T,), dtype=tl.float32),)
    for s in range(HCH + BI - 1):  # the input rows that meet the chunk through the taps
        top = h_first + i0 - PH + s
        if (top + (R - 1) * HCH >= 0) & (top < H):  # some band's row is on the map
            rho = h_lo + i0 - PH + s
            xs = _window(x_ptr + base + rho * W, col0 - PA, ok & (rho >= 0) & (rho < H), W,
                         VEC, NV)
            new = ()
            for i in tl.static_range(BI):
                hg = rho + PH - i0 - i  # the output row meeting input row rho through tap row i
                g_ok = ok & (hg >= h_lo) & (hg < h_hi) & (i0 + i < KH)
                gs = _window(g_ptr + base + hg * W, col0, g_ok, W, GV, B // GV)
                for j in tl.static_range(KW):
                    a = acc[i * KW + j]
                    for u in tl.static_range(B):
                        a += gs[u] * xs[u + j + PA - PW]
                    new = new + (a,)
            acc = new
    split = tl.program_id(1) * tl.num_programs(2) + tl.program_id(2)
    out = part_ptr + (split.to(tl.int64) * C + c) * (KH * KW) + i0 * KW
    for i in tl.static_range(BI):
        for j in tl.static_range(KW):
            tl.store(out + i * KW + j, tl.sum(acc[i * KW + j], axis=0), mask=i0 + i < KH)


# ---------------------------------------------------------------------------- host side


def _fwd_meta(cfg) -> dict:
    bh, b, g, warps, r = cfg
    return dict(BH=bh, B=b, G=g, T=32 * warps // g, R=r)


def _wgrad_meta(cfg) -> dict:
    bi, b, g, warps, hch, r = cfg
    return dict(BI=bi, B=b, G=g, T=32 * warps // g, HCH=hch, R=r)


def _autotune_configs(space, meta, interpret_cfg, interpret):
    if interpret:  # the interpreter is slow: one config is enough to check numerics
        space = (interpret_cfg,)
    return [triton.Config(meta(cfg), num_warps=cfg[3]) for cfg in space]


def _prune(pick, meta):
    def prune(configs, named_args, **kwargs):
        n, c, h = named_args['N'], named_args['C'], named_args['H']
        w = named_args['WV'] * kwargs['VEC']
        keep = {tuple(sorted(meta(cfg).items())) for cfg in pick((n, c, h, w, kwargs['KH']))}
        return [cfg for cfg in configs if tuple(sorted(cfg.kwargs.items())) in keep]
    return prune


@functools.lru_cache(maxsize=None)
def kernels(interpret: bool) -> types.SimpleNamespace:
    """The kernels, compiled (``interpret`` False) or run by Triton's interpreter: ``fwd``,
    ``wgrad`` (one config per launch) and ``fwd_tuned``, ``wgrad_tuned`` (autotuned over
    the configs kept for the shape; under the interpreter, one config)."""
    k = build_kernels((_unpack, _lanes, _window, _fwd_kernel, _wgrad_kernel), interpret)
    key = ['N', 'H', 'WV', 'KH', 'KW', 'VEC']
    return types.SimpleNamespace(
        fwd=k._fwd_kernel, wgrad=k._wgrad_kernel,
        fwd_tuned=triton.autotune(
            configs=_autotune_configs(FWD_SPACE, _fwd_meta, INTERPRET_FWD, interpret),
            key=key, prune_configs_by=dict(early_config_prune=_prune(fwd_configs, _fwd_meta))
        )(k._fwd_kernel),
        wgrad_tuned=triton.autotune(
            configs=_autotune_configs(WGRAD_SPACE, _wgrad_meta, INTERPRET_WGRAD, interpret),
            key=key,
            prune_configs_by=dict(early_config_prune=_prune(wgrad_configs, _wgrad_meta))
        )(k._wgrad_kernel))


def expand_weight(weight: torch.Tensor, flip: bool = False) -> torch.Tensor:
    """fp32 (C, MB + Kh - 1, Kw, MB) ``M[c, rr, j, r] = w[c, rr - r, j]`` (zero where
    rr - r is not a kernel row): the outer-product columns of every tile row offset, so a
    kernel loads them with aligned vector loads and no mask. ``flip`` flips the kernel in
    both axes first (the input gradient)."""
    w = weight.reshape(weight.shape[0], *weight.shape[-2:]).float()
    if flip:
        w = w.flip(-2, -1)
    padded = torch.nn.functional.pad(w, (0, 0, _MB - 1, _MB - 1))
    return padded.unfold(1, _MB, 1).flip(-1).contiguous()


def _grid_fwd(n, c, h, w):
    def grid(meta):
        return (c * triton.cdiv(n, meta['G'] // meta['R']),
                triton.cdiv(h, meta['BH'] * meta['R']), triton.cdiv(w, meta['T'] * meta['B']))
    return grid


def _launch_forward(x: torch.Tensor, m: torch.Tensor, bias: Optional[torch.Tensor],
                    kh: int, kw: int, cfg: Optional[Tuple[int, ...]] = None) -> torch.Tensor:
    n, c, h, w = x.shape
    xc = x.contiguous()
    y = torch.empty_like(xc, memory_format=torch.contiguous_format)
    b = bias.contiguous() if bias is not None else xc  # never read without bias
    vec = _vec(w)
    args = (xc, m, b, y, n, c, h, w // vec, int(bias is not None))
    consts = dict(KH=kh, KW=kw, VEC=vec)
    k = kernels(interpreting())
    if cfg is None:
        k.fwd_tuned[_grid_fwd(n, c, h, w)](*args, **consts)
    else:
        meta = _fwd_meta(cfg)
        k.fwd[_grid_fwd(n, c, h, w)(meta)](*args, **consts, **meta, num_warps=cfg[3])
    if x.is_contiguous(memory_format=torch.channels_last) and not x.is_contiguous():
        y = y.contiguous(memory_format=torch.channels_last)
    return y


def forward(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor = None) -> torch.Tensor:
    """Depthwise 'same' conv; output in ``x``'s dtype and memory format."""
    kh, kw = weight.shape[-2:]
    return _launch_forward(x, expand_weight(weight), bias, kh, kw)


def input_grad(grad_out: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """Input gradient: the forward kernel with the weight flipped in both axes."""
    kh, kw = weight.shape[-2:]
    return _launch_forward(grad_out, expand_weight(weight, flip=True), None, kh, kw)


def _launch_wgrad(x: torch.Tensor, grad_out: torch.Tensor, kh: int, kw: int,
                  cfg: Optional[Tuple[int, ...]] = None) -> torch.Tensor:
    n, c, h, w = x.shape
    xc, gc = x.contiguous(), grad_out.contiguous()
    vec = _vec(w)
    interpret = interpreting()
    if cfg is not None:
        cfgs = [cfg]
    else:  # what the tuner may pick: size the partial-sum buffer for the most splits
        cfgs = [INTERPRET_WGRAD] if interpret else wgrad_configs((n, c, h, w, kh))
    splits = max(_wgrad_splits(n, h, w, _wgrad_meta(k)) for k in cfgs)
    part = torch.empty((splits, c, kh, kw), device=x.device, dtype=torch.float32)

    def grid(meta):
        return (c * triton.cdiv(kh, meta['BI']),
                triton.cdiv(n, meta['G'] // meta['R']) * triton.cdiv(h, meta['HCH'] * meta['R']),
                triton.cdiv(w, meta['T'] * meta['B']))
    args = (xc, gc, part, n, c, h, w // vec)
    consts = dict(KH=kh, KW=kw, VEC=vec)
    k = kernels(interpret)
    if cfg is None:
        k.wgrad_tuned[grid](*args, **consts)
        meta = k.wgrad_tuned.best_config.kwargs
    else:
        meta = _wgrad_meta(cfg)
        k.wgrad[grid(meta)](*args, **consts, **meta, num_warps=cfg[3])
    return part[:_wgrad_splits(n, h, w, meta)].sum(0)[:, None]


def _wgrad_splits(n: int, h: int, w: int, meta: dict) -> int:
    return (triton.cdiv(n, meta['G'] // meta['R']) * triton.cdiv(h, meta['HCH'] * meta['R'])
            * triton.cdiv(w, meta['T'] * meta['B']))


def weight_grad(x: torch.Tensor, grad_out: torch.Tensor, kh: int, kw: int) -> torch.Tensor:
    """fp32 weight gradient (C, 1, Kh, Kw) by a split reduction over batch and rows."""
    return _launch_wgrad(x, grad_out, kh, kw)


# ----------------------------------------------------------------- ahead-of-time specs


def _taps_inside(size: int, k: int) -> int:
    """Sum over the positions of a map axis of the kernel taps that fall inside the map."""
    p = k // 2
    return sum(min(size - 1, x + p) - max(0, x - p) + 1 for x in range(size))


def _rows_walked(h: int, tile: int, span: int, start: int) -> int:
    """Input rows inside the map that the row loops of all row tiles execute: tile t walks
    ``span`` rows from ``t * tile + start``."""
    return sum(min(h, t * tile + start + span) - max(0, t * tile + start)
               for t in range(triton.cdiv(h, tile)))


def _iterations(h: int, band: int, bands: int, span: int, start: int) -> int:
    """Row-loop iterations of all row blocks of ``bands`` bands of ``band`` rows: an
    iteration runs when the row of any band (block t, band r: row ``(t * bands + r) *
    band + start + s``) is on the map."""
    block = band * bands
    return sum(1 for t in range(triton.cdiv(h, block)) for s in range(span)
               if t * block + start + s + (bands - 1) * band >= 0
               and t * block + start + s < h)


def _spec(kernel, fn, signature, constexprs, warps, label, issued, real, grid, scalars,
          l2_bytes, lane_bytes):
    return AotKernel(kernel=kernel, fn=fn, signature=signature, constexprs=constexprs,
                     num_warps=warps, num_stages=1, config=label, mma=False,
                     useful_fraction=real / issued, flops_per_program=issued // grid,
                     grid=grid, scalars=scalars, l2_bytes=l2_bytes, lane_bytes=lane_bytes)


def aot_specs(shape: Shape, dtype: str) -> List[AotKernel]:
    """Every kernel ('fwd', 'dgrad', 'wgrad') x kept config at ``shape`` (N, C, H, W, K) for
    inputs of ``dtype`` ('fp32', 'bf16', 'fp16'); see :mod:`mmreplk.ops.aot`."""
    if dtype not in ELEMENT_TYPES:
        raise ValueError(f'unknown dtype {dtype!r}; use {", ".join(ELEMENT_TYPES)}')
    n, c, h, w, k = shape
    kh, kw = min(k, 2 * h - 1), min(k, 2 * w - 1)  # dwconv crops kernels to the map
    vec = _vec(w)
    elem = ELEMENT_TYPES[dtype].itemsize
    real = n * c * _taps_inside(h, kh) * _taps_inside(w, kw)
    scalars = dict(N=n, C=c, H=h, WV=w // vec)
    ints = dict(N='i32', C='i32', H='i32', WV='i32')
    specs = []
    for cfg in fwd_configs(shape):
        meta = _fwd_meta(cfg)
        bh, b, g, t, r = meta['BH'], meta['B'], meta['G'], meta['T'], meta['R']
        images = triton.cdiv(n, g // r)
        grid = c * images * triton.cdiv(h, bh * r) * triton.cdiv(w, t * b)
        walked = _rows_walked(h, bh, bh + kh - 1, -(kh // 2))
        issued = (c * images * g * triton.cdiv(w, t * b) * t * b * kw * bh
                  * _iterations(h, bh, r, bh + kh - 1, -(kh // 2)))
        # L2: each program's input rows (its tile and halo), the output, and the rows of
        # the expanded weight it walks
        col_tiles, cols = triton.cdiv(w, t * b), min(w, t * b + kw - 1)
        l2 = (n * c * walked * col_tiles * cols * elem + n * c * h * w * elem
              + grid * (bh + kh - 1) * kw * bh * 4)
        label = config_label('fwd', cfg)
        sig = dict(x_ptr=f'*{dtype}', m_ptr='*fp32', b_ptr=f'*{dtype}', y_ptr=f'*{dtype}',
                   **ints, HAS_BIAS='i32', KH='constexpr', KW='constexpr', VEC='constexpr',
                   BH='constexpr', B='constexpr', G='constexpr', T='constexpr', R='constexpr')
        consts = dict(KH=kh, KW=kw, VEC=vec, **meta)
        for kernel in ('fwd', 'dgrad'):  # one binary (the input gradient flips the weight)
            specs.append(_spec(kernel, kernels(False).fwd, sig, consts, cfg[3], label, issued,
                               real, grid, scalars, l2, b * elem))
    for cfg in wgrad_configs(shape):
        meta = _wgrad_meta(cfg)
        bi, b, g, t, hch, r = (meta[k] for k in ('BI', 'B', 'G', 'T', 'HCH', 'R'))
        n_ib = triton.cdiv(kh, bi)
        images = triton.cdiv(n, g // r)
        grid = c * n_ib * images * triton.cdiv(h, hch * r) * triton.cdiv(w, t * b)
        walked = sum(_rows_walked(h, hch, hch + bi - 1, i * bi - kh // 2)
                     for i in range(n_ib))
        iterations = sum(_iterations(h, hch, r, hch + bi - 1, i * bi - kh // 2)
                         for i in range(n_ib))
        issued = c * images * g * triton.cdiv(w, t * b) * t * b * kw * bi * iterations
        # L2: input rows and halos (once per block of BI kernel rows), the output
        # gradient's rows (likewise), the partial sums
        col_tiles, cols = triton.cdiv(w, t * b), min(w, t * b + kw - 1)
        l2 = (n * c * walked * col_tiles * cols * elem + n * c * n_ib * h * w * elem
              + grid * bi * kw * 4)
        sig = dict(x_ptr=f'*{dtype}', g_ptr=f'*{dtype}', part_ptr='*fp32', **ints,
                   KH='constexpr', KW='constexpr', VEC='constexpr', BI='constexpr',
                   B='constexpr', G='constexpr', T='constexpr', HCH='constexpr', R='constexpr')
        specs.append(_spec('wgrad', kernels(False).wgrad, sig, dict(KH=kh, KW=kw, VEC=vec, **meta),
                           cfg[3], config_label('wgrad', cfg), issued, real,
                           grid, scalars, l2, b * elem))
    return specs
