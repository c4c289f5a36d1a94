"""The contract between the Triton kernel modules and the ahead-of-time kernel inspection.

Every Triton backend module of :mod:`mmreplk.ops` (``dwconv_triton``: CUDA-core FMA kernels,
``dwconv_triton_tc``: tensor-core kernels) exposes

    def aot_specs(shape: Shape, dtype: str) -> List[AotKernel]

which lists, for one convolution shape (N, C, H, W, K) and one dtype name ('fp32', 'bf16',
'fp16'), every kernel it would launch for that shape with every config of its tuning space,
described completely enough to compile it without a GPU (``triton.compile(ASTSource(fn,
signature, constexprs), target=GPUTarget('cuda', arch, 32), options=dict(num_warps=...,
num_stages=...))``). The kernel model (:mod:`mmreplk.ops.kernel_model`) compiles each entry
for sm_80 and sm_90 and reads registers, spills, shared memory and the SASS of its
innermost loop.

This module imports neither torch nor triton.
"""
from dataclasses import dataclass, field
from typing import Any, Dict, Tuple

Shape = Tuple[int, int, int, int, int]  # (N, C, H, W, K)


@dataclass(frozen=True)
class AotKernel:
    """One kernel x one config at one shape and dtype, ready for ``triton.compile``.

    Attributes:
        kernel: Role of the kernel: 'fwd', 'dgrad', 'wgrad' (CUDA-core FMA path) or
            'fwd_tc', 'dgrad_tc', 'wgrad_tc' (tensor-core path).
        fn: The ``@triton.jit`` function (unwrapped from ``triton.autotune`` if needed).
        signature: Argument name -> Triton type string ('*fp32', '*bf16', 'i32',
            'constexpr', ...) for every argument of ``fn``, in order.
        constexprs: Values of the ``constexpr`` arguments (tile sizes, kernel size, ...).
        num_warps: Warps per program.
        num_stages: Software-pipelining stages (Triton's ``num_stages`` option).
        config: Short label of the config, e.g. ``'BH=8,BW=128,w4'``.
        mma: Whether the kernel is meant to use tensor cores (``tl.dot``).
        useful_fraction: Real taps over multiply-adds issued at this shape: band waste
            (tensor-core Toeplitz), masked taps at the map border, partial tiles at the
            map's edges. In (0, 1].
        flops_per_program: Multiply-adds (FMA or MMA MACs) one program issues, counting
            masked lanes (what the hardware executes), used to relate the loop's
            instruction mix to time.
        grid: Number of programs launched at this shape (for occupancy / tail effects).
        extra: Anything else the inspection may print (free form).
        scalars: Values of the integer arguments at this shape (optional). Triton's launcher
            specializes integers that are multiples of 16 (and pointers, assumed 16-byte
            aligned), which decides vectorization; without a value an integer is compiled
            unspecialized.
        l2_bytes: Bytes all programs together request from L2 (each program's distinct
            lines: halos and re-reads across programs count, reuse inside one does not);
            0: only the compulsory bytes.
        lane_bytes: Distance in bytes between adjacent lanes' addresses in the per-lane
            loads (0: contiguous, i.e. the load width); sets their L1 wavefronts.
    """
    kernel: str
    fn: Any
    signature: Dict[str, str]
    constexprs: Dict[str, Any]
    num_warps: int
    num_stages: int
    config: str
    mma: bool
    useful_fraction: float
    flops_per_program: int
    grid: int
    extra: Dict[str, Any] = field(default_factory=dict)
    scalars: Dict[str, int] = field(default_factory=dict)
    l2_bytes: int = 0
    lane_bytes: int = 0
