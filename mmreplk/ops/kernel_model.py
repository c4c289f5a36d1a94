"""GPU cost model of the Triton kernels, static (ahead of time): no GPU, no CUDA driver.

A contributor's tool beside the kernels (``tools/analysis_tools/inspect_kernels.py`` is
its command line). Each entry of a kernel module's ``aot_specs(shape, dtype)``
(:class:`mmreplk.ops.aot.AotKernel`) is compiled for sm_80 or sm_90 with Triton's own
toolchain; the cubin's resource usage and the SASS of its innermost hot loop then give a
static *bound* (an estimate, not a measurement) on the fraction of the GPU's peak the
kernel can reach at that shape, and the resource that limits it. Two models, side by side
(see ``docs/dwconv.md``, "Static model"):

* first (``bound_basic``): issue slots, FMA / ALU / tensor pipes, one L1 wavefront per
  memory instruction, code outside the hot loop once per program, a DRAM cap;
* refined (``bound``, ``limiter``): L1 wavefronts from each access's width and lane
  stride, shared-memory operands of wgmma, barrier and fence stalls, waves and tail, L2
  and DRAM traffic, an assumed sustained clock and launch cost.

``useful_fraction`` (from the spec) is real taps over multiply-adds issued. The named
training workloads (:data:`WORKLOADS`) give RepLKNet-31B's shapes at the batch sizes users
train with. Triton is imported only by the functions that compile.
"""
import importlib
import os
import re
import subprocess
import tempfile
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence, Tuple

from mmreplk.ops.aot import AotKernel, Shape

DTYPES = ('fp32', 'bf16', 'fp16')
ELEMENT_BYTES = {'fp32': 4, 'bf16': 2, 'fp16': 2}
KERNEL_MODULES = ('mmreplk.ops.dwconv_triton', 'mmreplk.ops.dwconv_triton_tc')


@dataclass(frozen=True)
class GpuModel:
    """Per-clock rates of one GPU generation (the static model's hardware constants).

    Attributes:
        arch: Compute capability as Triton's ``GPUTarget`` takes it (80, 90).
        name: The GPU whose peaks are quoted.
        sms: Streaming multiprocessors.
        fma_rate: fp32 FFMA warp-instructions per clock per SMSP (32 lanes -> 1, 16 -> 0.5).
        fp32_tflops: fp32 FMA peak (TFLOP/s, 2 FLOP per FMA).
        tensor_tflops: Dense tensor-core peak per operand type (TFLOP/s).
        tensor_macs: Dense tensor-core multiply-adds per clock per SM per operand type.
        dram_tbps: DRAM bandwidth (TB/s).
        smem_per_sm: Shared memory per SM usable by programs (bytes).
        boost_ghz: The SM clock the fp32 peak is quoted at.
        sustained_ghz: The SM clock assumed under a dense kernel (an assumption, see
            :data:`GPUS`; ``tools/gpu_check.sh`` prints the measured one).
        l2_tbps: L2 read bandwidth assumed available to one kernel (TB/s).
        regs_per_sm: 32-bit registers per SM.
        max_warps: Resident warps per SM.
        max_programs: Resident programs (CTAs) per SM.
    """
    arch: int
    name: str
    sms: int
    fma_rate: float
    fp32_tflops: float
    tensor_tflops: Dict[str, float]
    tensor_macs: Dict[str, int]
    dram_tbps: float
    smem_per_sm: int
    boost_ghz: float
    sustained_ghz: float
    l2_tbps: float
    regs_per_sm: int = 65536
    max_warps: int = 64
    max_programs: int = 32


# Peaks, bandwidths and clocks: NVIDIA's data sheets (A100 SXM4 80GB, H100 SXM5) for the
# peaks, boost clocks and DRAM. Assumed, to be replaced by measurements: the sustained clock
# (H100 SXM5: boost 1.98 GHz, base 1.59 GHz; a dense FMA or tensor kernel runs
# power-limited in between: 1.755 GHz assumed; A100 SXM: 1.41 GHz boost, 1.275 assumed)
# and the L2 bandwidth one kernel gets (H100: 4.0 TB/s, A100: 3.0 TB/s assumed; both
# GPUs split L2 in two partitions, and lines from the far one cost more).
GPUS: Dict[str, GpuModel] = {
    'sm_80': GpuModel(80, 'A100 SXM', 108, 0.5, 19.5,
                      dict(fp16=312, bf16=312, tf32=156), dict(fp16=1024, bf16=1024, tf32=512),
                      2.04, 164 * 1024, boost_ghz=1.41, sustained_ghz=1.275, l2_tbps=3.0),
    'sm_90': GpuModel(90, 'H100/H200 SXM', 132, 1.0, 66.9,
                      dict(fp16=989, bf16=989, tf32=494, fp8=1979),
                      dict(fp16=2048, bf16=2048, tf32=1024, fp8=4096), 3.35, 228 * 1024,
                      boost_ghz=1.98, sustained_ghz=1.755, l2_tbps=4.0),
}
SMSPS = 4                 # sub-partitions per SM
L1_BYTES = 128            # one L1 / shared-memory wavefront per clock per SM, 128 bytes
BARRIER_CLOCKS = 20       # a CTA barrier (BAR.SYNC): assumed stall of the CTA's warps
FENCE_CLOCKS = 10         # a fence / warpgroup arrive or wait / memory barrier: assumed
LAUNCH_US = 3.0           # launch and ramp-up of one kernel (assumed, microseconds)
SATURATING_WARPS = 16     # resident warps per SM that reach its issue rate (assumed)
LIMITERS = ('issue', 'fma pipe', 'alu', 'lsu', 'smem', 'sync', 'tensor', 'l2', 'dram',
            'waves', 'launch')

# ------------------------------------------------------------------------------------ SASS


@dataclass(frozen=True)
class Instr:
    """One SASS instruction."""
    addr: int
    pred: str
    opcode: str
    operands: str
    target: Optional[str] = None  # branch target label

    @property
    def base(self) -> str:
        return self.opcode.split('.')[0]

    def text(self) -> str:
        pred = f'{self.pred} ' if self.pred else ''
        return f'{pred}{self.opcode} {self.operands}'.strip()


_LINE = re.compile(r'^\s*/\*([0-9a-f]{4,})\*/\s+(@!?U?P\w+\s+)?([A-Z][\w.]*)\s*(.*?)\s*;')
_LABEL = re.compile(r'^(\.L_x_\d+):')
_TARGET = re.compile(r'`\((\.L_x_\d+)\)')


def parse_sass(text: str) -> Tuple[List[Instr], Dict[str, int]]:
    """Instructions and label -> instruction index of one function's ``nvdisasm -c`` text."""
    instrs, labels, pending = [], {}, []
    for line in text.splitlines():
        label = _LABEL.match(line.strip())
        if label:
            pending.append(label.group(1))
            continue
        m = _LINE.match(line)
        if not m:
            continue
        for name in pending:
            labels[name] = len(instrs)
        pending = []
        target = _TARGET.search(m.group(4))
        instrs.append(Instr(int(m.group(1), 16), (m.group(2) or '').strip(), m.group(3),
                            m.group(4), target.group(1) if target else None))
    for name in pending:
        labels[name] = len(instrs)
    return instrs, labels


def mma_shape(opcode: str) -> Optional[Tuple[int, int, int, str, int]]:
    """(M, N, K, operand type, warps sharing it) of an HMMA / HGMMA opcode, else None.

    ``HMMA.16816.F32.BF16`` is one warp's 16x8x16 product; ``HGMMA.64x128x16.F32.BF16`` is
    a warpgroup's (4 warps') 64x128x16 product.
    """
    parts = opcode.split('.')
    kind = {'BF16': 'bf16', 'F16': 'fp16', 'TF32': 'tf32', 'E4M3': 'fp8', 'E5M2': 'fp8'}
    types = [kind[p] for p in parts[2:] if p in kind]
    if parts[0] == 'HMMA' and len(parts) > 2:
        digits = parts[1]
        m, rest = (16, digits[2:]) if digits.startswith('16') else (8, digits[1:])
        n, k = int(rest[0]), int(rest[1:])
        return m, n, k, types[-1] if types else 'fp16', 1
    if parts[0] == 'HGMMA' and len(parts) > 2:
        m, n, k = (int(v) for v in parts[1].split('x'))
        return m, n, k, types[-1] if types else 'fp16', 4
    return None


_CLASSES = {
    'ffma': {'FFMA', 'FFMA32I'},
    'fp32': {'FADD', 'FMUL', 'FADD32I', 'FMUL32I'},
    'hfma2': {'HFMA2'},
    'fp16': {'HADD2', 'HMUL2'},
    'hmma': {'HMMA'},
    'hgmma': {'HGMMA'},
    'imad': {'IMAD', 'IMUL', 'IMUL32I', 'IMAD32I'},
    'ldg': {'LDG'},
    'lds': {'LDS', 'LDSM'},
    'ldgsts': {'LDGSTS'},
    'stg': {'STG'},
    'sts': {'STS'},
    'local': {'LDL', 'STL'},
    'atom': {'ATOM', 'ATOMG', 'ATOMS', 'RED', 'REDG'},
    'shfl': {'SHFL'},
    'const': {'LDC', 'ULDC'},
    'tma': {'UTMALDG', 'UTMASTG', 'UBLKCP', 'UTMAPF'},
    'control': {'BRA', 'BRX', 'JMP', 'EXIT', 'RET', 'CALL', 'BSSY', 'BSYNC', 'WARPSYNC',
                'YIELD', 'NOP', 'BPT', 'BMOV'},
    'sync': {'BAR', 'SYNCS', 'MEMBAR', 'ERRBAR', 'WARPGROUP', 'FENCE', 'DEPBAR', 'ARRIVES',
             'LDGDEPBAR', 'CCTL'},
    'cvt': {'F2F', 'F2I', 'I2F', 'I2FP', 'F2FP', 'FRND', 'F2IP'},
    'xu': {'MUFU'},
}
_CLASS_OF = {op: cls for cls, ops in _CLASSES.items() for op in ops}
MEMORY_CLASSES = ('ldg', 'lds', 'ldgsts', 'stg', 'sts', 'local', 'atom', 'shfl')
MMA_CLASSES = ('hmma', 'hgmma')


def classify(ins: Instr) -> str:
    """Opcode class of an instruction (the keys of the loop's counts)."""
    base = ins.base
    if base == 'HFMA2' and '.MMA' in ins.opcode and '-RZ, RZ' in ins.operands:
        return 'move'  # ptxas's idiom for a register move / zeroing on the MMA pipe
    if base == 'HADD2' and '.F32' in ins.opcode:
        return 'cvt'   # fp16 -> fp32 conversion
    if base in _CLASS_OF:
        return _CLASS_OF[base]
    if base.startswith('U') or base in ('S2UR', 'R2UR'):
        return 'uniform'
    return 'alu'  # IADD3, ISETP, LOP3, SHF, LEA, SEL, MOV, PRMT, FSETP, FSEL, FMNMX, ...


def find_loops(instrs: Sequence[Instr], labels: Dict[str, int]) -> List[Tuple[int, int]]:
    """(first, last) instruction index of every loop, from its backward branch."""
    loops = set()
    for i, ins in enumerate(instrs):
        if ins.base == 'BRA' and ins.target in labels:
            start = labels[ins.target]
            if start < i:  # start == i is the trap after EXIT
                loops.add((start, i))
    return sorted(loops)


def mma_macs(ins: Instr) -> Tuple[float, str]:
    """Multiply-adds one warp executes in this instruction and the operand type ('' if none)."""
    shape = mma_shape(ins.opcode)
    if shape is None:
        return 0.0, ''
    m, n, k, kind, warps = shape
    return m * n * k / warps, kind


def _fma_work(instrs: Sequence[Instr]) -> float:
    """Lane multiply-adds per warp (FFMA 32, HFMA2 64, MMA by shape): picks the hot loop."""
    work = 0.0
    for ins in instrs:
        cls = classify(ins)
        work += 32 if cls == 'ffma' else 64 if cls == 'hfma2' else mma_macs(ins)[0]
    return work


def hot_loop(instrs: Sequence[Instr], labels: Dict[str, int]) -> Tuple[int, int, bool]:
    """The innermost loop doing multiply-adds (with the most of them if several):
    (first, last, found). Loops without multiply-adds (e.g. barrier spins) do not count as
    nested loops; with no such loop the whole function is returned and found is False."""
    loops = [lp for lp in find_loops(instrs, labels)
             if _fma_work(instrs[lp[0]:lp[1] + 1]) > 0]
    inner = [lp for lp in loops
             if not any(o != lp and lp[0] <= o[0] and o[1] <= lp[1] for o in loops)]
    if not inner:
        exits = [i for i, ins in enumerate(instrs) if ins.base == 'EXIT']
        return 0, (exits[-1] if exits else len(instrs) - 1), False
    best = max(inner, key=lambda lp: (_fma_work(instrs[lp[0]:lp[1] + 1]), lp[1] - lp[0]))
    return best[0], best[1], True


# ------------------------------------------------------------------------------- the model


@dataclass
class LoopModel:
    """Static throughput model of one loop body on one GPU (clocks per warp-iteration on
    its SMSP; every warp of the SM runs the same loop).

    ``cycles`` is the refined model (load widths, shared-memory operands of wgmma, barriers
    and fences); ``basic_cycles`` the first one (one L1 wavefront per memory instruction,
    no shared-memory or synchronization cost), kept to compare."""
    counts: Dict[str, int]
    instructions: int
    fma_lanes: float       # fp32-FMA-equivalent lane multiply-adds per warp-iteration
    mma_macs: float        # tensor multiply-adds per warp-iteration
    mma_kind: str
    cycles: Dict[str, float] = field(default_factory=dict)
    basic_cycles: Dict[str, float] = field(default_factory=dict)

    @property
    def limiter(self) -> str:
        return max(self.cycles, key=self.cycles.get)

    @property
    def clocks(self) -> float:
        return max(self.cycles.values())

    @property
    def basic_clocks(self) -> float:
        return max(self.basic_cycles.values())


_WIDTH = {'128': 16, '64': 8, 'U16': 2, 'S16': 2, 'U8': 1, 'S8': 1}
_MMA_BYTES = {'bf16': 2, 'fp16': 2, 'tf32': 4, 'fp8': 1}
_ADDRESS = re.compile(r'\[(R\d+)(?:\.64)?[+\]\-]')


def access_bytes(ins: Instr) -> int:
    """Bytes one lane moves in a load / store instruction (from its width suffix)."""
    return next((_WIDTH[p] for p in ins.opcode.split('.')[1:] if p in _WIDTH), 4)


def uniform_registers(instrs: Sequence[Instr]) -> frozenset:
    """Registers that only ever receive a uniform register (``MOV Rx, URy``,
    ``IMAD.MOV.U32 Rx, RZ, RZ, URy``): an address in them is the same for every lane."""
    uniform, other = set(), set()
    for ins in instrs:
        ops = [o.strip() for o in ins.operands.split(',')]
        if not ops or not re.fullmatch(r'R\d+', ops[0]):
            continue
        if ins.base in ('MOV', 'IMAD') and ops[-1].startswith('UR') and (
                ins.base == 'MOV' or ops[1:3] == ['RZ', 'RZ']):
            uniform.add(ops[0])
        else:
            other.add(ops[0])
    return frozenset(uniform - other)


def wavefronts(ins: Instr, lane_bytes: int, uniform: frozenset) -> float:
    """128-byte L1 / shared-memory wavefronts of one warp's memory instruction: one for a
    uniform address or a shuffle; otherwise the 32 lanes' footprint, the lanes
    ``max(width, lane_bytes)`` bytes apart (``lane_bytes`` 0: contiguous)."""
    cls = classify(ins)
    if cls == 'shfl':
        return 1.0
    address = _ADDRESS.search(ins.operands)
    if cls in ('ldg', 'stg', 'ldgsts', 'atom') and address and address.group(1) in uniform:
        return 1.0
    width = access_bytes(ins)
    stride = width if cls in ('lds', 'sts', 'local') else max(width, lane_bytes)
    return float(min(32, max(1, -(-32 * stride // L1_BYTES))))


def hgmma_smem_bytes(ins: Instr) -> int:
    """Shared-memory bytes a warpgroup's HGMMA reads: B always, A unless it comes from
    registers (``HGMMA... Rd, Ra, gdesc[...]``)."""
    shape = mma_shape(ins.opcode)
    if shape is None or ins.base != 'HGMMA':
        return 0
    m, n, k, kind, _ = shape
    a_in_regs = re.match(r'\s*R\d+\s*,\s*R\d+', ins.operands) is not None
    return (n * k + (0 if a_in_regs else m * k)) * _MMA_BYTES.get(kind, 2)


def loop_model(body: Sequence[Instr], gpu: GpuModel, lane_bytes: int = 0,
               programs: int = 1, uniform: frozenset = frozenset()) -> LoopModel:
    """Count the body's instructions by class and the clocks each resource needs.

    ``lane_bytes``: distance between adjacent lanes' addresses of the per-lane loads (the
    kernel's layout); ``programs``: resident programs per SM (they hide each other's
    barrier stalls); ``uniform``: registers holding lane-uniform addresses."""
    counts: Dict[str, int] = {}
    macs, kinds = 0.0, set()
    fronts = shared_fronts = hgmma_bytes = 0.0
    barriers = fences = 0
    for ins in body:
        cls = classify(ins)
        counts[cls] = counts.get(cls, 0) + 1
        m, kind = mma_macs(ins)
        if m:
            macs += m
            kinds.add(kind)
        if cls in MEMORY_CLASSES:
            w = wavefronts(ins, lane_bytes, uniform)
            fronts += w
            shared_fronts += w if cls in ('lds', 'sts') else 0
        hgmma_bytes += hgmma_smem_bytes(ins)
        if cls == 'sync':
            barriers += ins.base == 'BAR'
            fences += ins.base != 'BAR'
    n = counts.get
    fp = n('ffma', 0) + n('fp32', 0)
    imad = n('imad', 0)
    if gpu.arch >= 90:  # FMA heavy + lite pipes, 16 lanes each; IMAD only on heavy
        fp += n('hfma2', 0) + n('fp16', 0)  # packed half shares them on sm_90
        fma = max(fp + imad, 2 * imad)
        fp16 = 0.0
    else:  # sm_80: one 16-lane FMA pipe; packed half on its own 32-lane pipe
        fma = 2 * (fp + imad)
        fp16 = n('hfma2', 0) + n('fp16', 0)
    mem = sum(n(c, 0) for c in MEMORY_CLASSES)
    kind = sorted(kinds)[0] if len(kinds) == 1 else ('mixed' if kinds else '')
    tensor = 0.0
    if macs:
        rate = gpu.tensor_macs.get(kind if kind in gpu.tensor_macs else 'fp16') / SMSPS
        tensor = macs / rate
    model = LoopModel(counts, len(body), 32 * (n('ffma', 0) + 2 * n('hfma2', 0)), macs, kind)
    common = dict(issue=float(len(body)), fma=float(fma), fp16=float(fp16),
                  alu=2.0 * (n('alu', 0) + n('cvt', 0)), xu=8.0 * n('xu', 0), tensor=tensor)
    model.basic_cycles = dict(common, l1=float(SMSPS * mem))
    # per SMSP-iteration the SM runs one warpgroup's HGMMAs: their shared-memory operands
    # and the shared loads / stores cross its 128 B/clk
    model.cycles = dict(common, lsu=SMSPS * fronts,
                        smem=hgmma_bytes / L1_BYTES + SMSPS * shared_fronts,
                        sync=(BARRIER_CLOCKS * barriers + FENCE_CLOCKS * fences)
                        / max(programs, 1))
    return model


def pipe_bound(model: LoopModel, gpu: GpuModel, mma: bool, basic: bool = False) -> float:
    """Fraction of the peak (tensor peak if ``mma``, else fp32 FMA) the loop can issue, by
    the refined model or (``basic``) the first one."""
    clocks = model.basic_clocks if basic else model.clocks
    if mma:
        return model.cycles['tensor'] / clocks if model.mma_macs else 0.0
    return model.fma_lanes / (32 * gpu.fma_rate * clocks)


def occupancy(regs: int, smem: int, num_warps: int, gpu: GpuModel) -> int:
    """Resident programs per SM from registers (allocated per warp in 256-register units),
    shared memory (plus 1 KiB reserved per program) and the warp / program limits."""
    per_warp = -(-max(regs, 1) * 32 // 256) * 256
    by_regs = gpu.regs_per_sm // (per_warp * num_warps)
    by_smem = gpu.smem_per_sm // (smem + 1024) if smem else gpu.max_programs
    return max(0, min(by_regs, by_smem, gpu.max_warps // num_warps, gpu.max_programs))


def wave_efficiency(grid: int, programs: int, num_warps: int, gpu: GpuModel
                    ) -> Tuple[int, float]:
    """(waves, efficiency) of ``grid`` programs on the GPU's SMs, ``programs`` resident per
    SM: the programs spread evenly (p per SM); each full wave of ``programs`` takes their
    time, and a partial last wave of k programs takes that of max(k, q), q the programs
    that saturate an SM (:data:`SATURATING_WARPS` warps)."""
    resident = max(programs, 1)
    per_sm = grid / gpu.sms
    full = int(per_sm // resident)
    rest = per_sm - full * resident
    q = min(resident, -(-SATURATING_WARPS // num_warps))
    time = full * resident + (max(rest, q) if rest > 1e-9 else 0.0)
    return full + (rest > 1e-9), per_sm / time


def peak_tflops(gpu: GpuModel, mma: bool, kind: str) -> float:
    """The peak a row's bound is a fraction of."""
    if mma:
        return gpu.tensor_tflops.get(kind, gpu.tensor_tflops['fp16'])
    return gpu.fp32_tflops


# ----------------------------------------------------------------------------- compilation


def toolchain_dir() -> str:
    """Triton's bundled CUDA binaries (ptxas, cuobjdump, nvdisasm)."""
    import triton
    return os.path.join(os.path.dirname(triton.__file__), 'backends', 'nvidia', 'bin')


def _attrs(spec: AotKernel) -> dict:
    """What Triton's launcher would specialize at run time: pointers 16-byte aligned (the
    tensors the modules pass are fresh or contiguous allocations) and the integer arguments
    that ``spec.scalars`` gives as multiples of 16."""
    attrs = {}
    for i, (name, ty) in enumerate(spec.signature.items()):
        if ty.startswith('*') or (ty[0] in 'iu' and spec.scalars.get(name, 1) % 16 == 0):
            attrs[(i,)] = [['tt.divisibility', 16]]
    return attrs


def compile_spec(spec: AotKernel, arch: int):
    """``triton.compile`` of one spec for ``sm_<arch>`` (Triton's on-disk cache applies)."""
    import triton
    from triton.backends.compiler import GPUTarget
    from triton.compiler import ASTSource
    src = ASTSource(fn=spec.fn, signature=dict(spec.signature), constexprs=dict(spec.constexprs),
                    attrs=_attrs(spec))
    return triton.compile(src, target=GPUTarget('cuda', arch, 32),
                          options=dict(num_warps=spec.num_warps, num_stages=spec.num_stages))


def _tool(name: str, *args: str) -> str:
    out = subprocess.run([os.path.join(toolchain_dir(), name), *args], capture_output=True,
                         text=True, check=True)
    return out.stdout


def cubin_facts(cubin: bytes) -> Tuple[Dict[str, int], str]:
    """({'regs', 'local', 'smem', 'stack'}, nvdisasm text) of a one-kernel cubin."""
    with tempfile.NamedTemporaryFile(suffix='.cubin') as f:
        f.write(cubin)
        f.flush()
        usage = _tool('cuobjdump', '--dump-resource-usage', f.name)
        sass = _tool('nvdisasm', '-c', f.name)
    fields = dict(re.findall(r'(REG|STACK|SHARED|LOCAL):(\d+)', usage))
    res = {k: int(fields.get(v, 0)) for k, v in
           dict(regs='REG', stack='STACK', smem='SHARED', local='LOCAL').items()}
    return res, sass


# ------------------------------------------------------------------------------ inspection


@dataclass
class Inspection:
    """One spec compiled for one arch: the record, the SASS and its hot loop."""
    record: dict
    instrs: List[Instr]
    loop: Tuple[int, int]
    model: LoopModel


def compulsory_bytes(shape: Shape, dtype: str) -> int:
    """Bytes any of the kernels must move: one map read and another read or written."""
    n, c, h, w, _ = shape
    return 2 * n * c * h * w * ELEMENT_BYTES[dtype]


def _quoted_ghz(gpu: GpuModel, mma: bool, kind: str) -> float:
    """The SM clock a peak is quoted at (the fp32 peak: boost; tensor peaks: from the
    data sheet's TFLOP/s and the per-clock rate)."""
    if not mma:
        return gpu.boost_ghz
    kind = kind if kind in gpu.tensor_macs else 'fp16'
    return gpu.tensor_tflops[kind] * 1e3 / (2 * gpu.sms * gpu.tensor_macs[kind])


_LIMITER_OF_RESOURCE = dict(issue='issue', fma='fma pipe', fp16='fma pipe', alu='alu',
                            xu='alu', lsu='lsu', smem='smem', sync='sync', tensor='tensor')


def inspect_spec(spec: AotKernel, shape: Shape, dtype: str, arch: str) -> Inspection:
    """Compile ``spec`` for ``arch`` ('sm_80' / 'sm_90') and evaluate the static model."""
    gpu = GPUS[arch]
    compiled = compile_spec(spec, gpu.arch)
    res, sass = cubin_facts(compiled.asm['cubin'])
    smem = max(res['smem'], int(getattr(compiled.metadata, 'shared', 0) or 0))
    instrs, labels = parse_sass(sass)
    first, last, found = hot_loop(instrs, labels)
    programs = occupancy(res['regs'], smem, spec.num_warps, gpu)
    model = loop_model(instrs[first:last + 1], gpu, spec.lane_bytes, programs,
                       uniform_registers(instrs))
    # Code outside the hot loop (set-up, epilogue), counted once per program against the
    # loop's trips (flops_per_program / multiply-adds per program-iteration).
    per_iter = (model.mma_macs if spec.mma else model.fma_lanes) * spec.num_warps
    exits = [i for i, ins in enumerate(instrs) if ins.base == 'EXIT']
    outside = max((exits[-1] + 1 if exits else len(instrs)) - model.instructions, 0)
    trips = spec.flops_per_program / per_iter if per_iter and found else 1.0
    overhead = outside / (trips * model.clocks) if found else 0.0
    overhead_basic = outside / (trips * model.basic_clocks) if found else 0.0
    waves, wave_eff = wave_efficiency(spec.grid, programs, spec.num_warps, gpu)
    peak = peak_tflops(gpu, spec.mma, model.mma_kind)
    issued_flops = 2.0 * spec.flops_per_program * spec.grid
    t_peak = issued_flops / (peak * 1e12)  # the issued work at the quoted peak
    dram_bytes = compulsory_bytes(shape, dtype)
    t_dram = dram_bytes / (gpu.dram_tbps * 1e12)
    # the first model: loop x DRAM cap x useful
    share_basic = pipe_bound(model, gpu, spec.mma, basic=True) / (1 + overhead_basic)
    dram_cap = min(1.0, t_peak / t_dram) if t_dram else 1.0
    bound_basic = min(share_basic, dram_cap) * spec.useful_fraction
    # the refined model: sustained clock, waves, L2 and DRAM traffic, launch
    share = pipe_bound(model, gpu, spec.mma) / (1 + overhead)
    clock = min(1.0, gpu.sustained_ghz / _quoted_ghz(gpu, spec.mma, model.mma_kind))
    t_loop = t_peak / max(share * clock, 1e-9)
    t_core = t_loop / wave_eff
    l2_bytes = spec.l2_bytes or dram_bytes
    t_l2 = l2_bytes / (gpu.l2_tbps * 1e12)
    t_launch = LAUNCH_US * 1e-6
    t_total = max(t_core, t_l2, t_dram) + t_launch
    bound = spec.useful_fraction * t_peak / t_total
    if t_launch > max(t_core, t_l2, t_dram):
        limiter = 'launch'
    elif max(t_l2, t_dram) > t_core:
        limiter = 'l2' if t_l2 >= t_dram else 'dram'
    elif wave_eff < share * clock:
        limiter = 'waves'
    else:
        limiter = _LIMITER_OF_RESOURCE.get(model.limiter, model.limiter)
    fmas = model.counts.get('ffma', 0) + model.counts.get('hfma2', 0)
    mmas = sum(model.counts.get(c, 0) for c in MMA_CLASSES)
    mem = sum(model.counts.get(c, 0) for c in MEMORY_CLASSES)
    n_, c_, h_, w_, k_ = shape
    record = dict(
        kernel=spec.kernel, config=spec.config, shape=dict(N=n_, C=c_, H=h_, W=w_, K=k_),
        batch=n_, dtype=dtype, arch=arch, mma=spec.mma, num_warps=spec.num_warps,
        regs=res['regs'], spills=res['local'] // 4, smem=smem, programs_per_sm=programs,
        occupancy=programs * spec.num_warps / gpu.max_warps,
        loop_found=found, loop_instructions=model.instructions,
        ffma_share=model.counts.get('ffma', 0) / model.instructions,
        hfma2_share=model.counts.get('hfma2', 0) / model.instructions,
        mma_share=mmas / model.instructions, mma_in_loop=mmas > 0, mma_kind=model.mma_kind,
        loads_per_fma=mem / max(fmas + mmas, 1), counts=dict(sorted(model.counts.items())),
        loop_cycles=dict(model.cycles), loop_limiter=model.limiter, limiter=limiter,
        loop_trips=trips, overhead=overhead, pipe_bound=share, pipe_bound_basic=share_basic,
        sustained_clock=clock, grid=spec.grid, waves=waves, wave_efficiency=wave_eff,
        l2_bytes=l2_bytes, dram_bytes=dram_bytes, l2_tbps_needed=l2_bytes / t_total / 1e12,
        dram_cap=dram_cap, time_us=t_total * 1e6, useful_fraction=spec.useful_fraction,
        bound_basic=bound_basic, bound=bound, peak_tflops=peak, useful_tflops=bound * peak)
    return Inspection(record, instrs, (first, last), model)


def mark_best(records: List[dict]) -> None:
    """Set ``best_for_shape``: the highest bound among the configs of each
    (kernel, shape, dtype, arch)."""
    best: Dict[tuple, float] = {}

    def key(r):
        return (r['kernel'], tuple(r['shape'].values()), r['dtype'], r['arch'],
                r.get('workload', ''))
    for r in records:
        best[key(r)] = max(best.get(key(r), -1.0), r['bound'])
    seen = set()
    for r in records:
        r['best_for_shape'] = r['bound'] == best[key(r)] and key(r) not in seen
        if r['best_for_shape']:
            seen.add(key(r))


def annotate(ins: Inspection, gpu: GpuModel) -> str:
    """The hot loop's SASS, one instruction a line with its class, then the model."""
    first, last = ins.loop
    what = 'innermost multiply-add loop' if ins.record['loop_found'] else 'no loop: whole kernel'
    lines = [f'// hot loop: instructions {first}..{last} of {len(ins.instrs)} ({what})']
    for ins_ in ins.instrs[first:last + 1]:
        lines.append(f'/*{ins_.addr:04x}*/  {classify(ins_):8s} {ins_.text()}')
    m, r = ins.model, ins.record
    lines.append('// counts: ' + ', '.join(f'{k} {v}' for k, v in sorted(m.counts.items())))
    lines.append('// clocks per warp-iteration on one SMSP (%s): ' % gpu.name + ', '.join(
        f'{k} {v:g}' for k, v in m.cycles.items() if v) + f'  -> limiter: {m.limiter}')
    lines.append(f"// first model: loop share {r['pipe_bound_basic']:.3f}, DRAM cap "
                 f"{r['dram_cap']:.3f}, x useful -> bound {r['bound_basic']:.3f}")
    lines.append(f"// refined: loop share {r['pipe_bound']:.3f} at clock x"
                 f"{r['sustained_clock']:.3f}, {r['waves']} waves (x{r['wave_efficiency']:.3f}),"
                 f" L2 {r['l2_bytes'] / 1e6:.1f} MB, DRAM {r['dram_bytes'] / 1e6:.1f} MB, "
                 f"{r['time_us']:.1f} us, x useful {r['useful_fraction']:.3f} -> bound "
                 f"{r['bound']:.3f} of {r['peak_tflops']:g} TFLOP/s, limiter: {r['limiter']}")
    return '\n'.join(lines)


# -------------------------------------------------------------------------------- discovery


def kernel_modules() -> list:
    """The Triton kernel modules of :data:`KERNEL_MODULES` that exist (a module that exists
    but fails to import raises)."""
    mods = []
    for name in KERNEL_MODULES:
        try:
            mods.append(importlib.import_module(name))
        except ModuleNotFoundError as e:
            if e.name != name:
                raise
    return mods


@dataclass(frozen=True)
class Task:
    """One row of the inspection: a module's kernel x config at a shape, dtype and arch."""
    module: str
    kernel: str
    config: str
    shape: Shape
    dtype: str
    arch: str
    workload: str = ''


def tasks(shapes: Sequence[Shape], dtypes: Sequence[str], archs: Sequence[str],
          kernels: Optional[Sequence[str]] = None, configs: Optional[Sequence[str]] = None,
          modules: Optional[Sequence] = None,
          workloads: Optional[Sequence[str]] = None) -> List[Task]:
    """Every (kernel, config) the modules list at each shape and dtype, for each arch,
    optionally restricted to some kernel names and config labels. ``workloads[i]`` names
    the workload ``shapes[i]`` belongs to ('' for none)."""
    names = list(workloads) if workloads is not None else [''] * len(shapes)
    out = []
    for mod in kernel_modules() if modules is None else modules:
        for shape, workload in zip(shapes, names):
            for dtype in dtypes:
                for spec in mod.aot_specs(shape, dtype):
                    if ((kernels is None or spec.kernel in kernels)
                            and (configs is None or spec.config in configs)):
                        out += [Task(mod.__name__, spec.kernel, spec.config, tuple(shape),
                                     dtype, arch, workload) for arch in archs]
    return out


def find_spec(task: Task) -> AotKernel:
    """The spec a task names (its module's ``aot_specs`` at the task's shape and dtype)."""
    mod = importlib.import_module(task.module)
    for spec in mod.aot_specs(task.shape, task.dtype):
        if spec.kernel == task.kernel and spec.config == task.config:
            return spec
    raise KeyError(f'{task.module} has no kernel {task.kernel!r} with config {task.config!r} '
                   f'at {task.shape} {task.dtype}')


def run_task(task: Task) -> Inspection:
    """Compile and inspect one task."""
    return inspect_spec(find_spec(task), task.shape, task.dtype, task.arch)


def _record(task: Task) -> dict:
    return dict(run_task(task).record, workload=task.workload)


def inspect_tasks(todo: Sequence[Task], jobs: int = 1) -> List[dict]:
    """The records of many tasks (in order), compiled by ``jobs`` worker processes;
    ``best_for_shape`` is set across them."""
    if jobs > 1 and len(todo) > 1:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor
        with ProcessPoolExecutor(jobs, mp_context=multiprocessing.get_context('fork')) as ex:
            records = list(ex.map(_record, todo))
    else:
        records = [_record(t) for t in todo]
    mark_best(records)
    return records


# ---------------------------------------------------------------------------------- tables


def _shape_label(r: dict) -> str:
    s = r['shape']
    return f"{s['N']}x{s['C']}x{s['H']}x{s['W']} K{s['K']}"


def format_table(records: Sequence[dict]) -> str:
    """One row per record; '*' marks the best config of its (kernel, shape, dtype, arch).
    'basic' is the first model's bound, 'bound' the refined one's, 'limit' what limits it."""
    head = (f"{'kernel':8} {'shape (N C HxW K)':22} {'dtype':5} {'arch':5} {'config':28} "
            f"{'regs':>4} {'spill':>5} {'smem':>6} {'occ':>4} {'loop':>5} {'fma%':>5} "
            f"{'mma%':>5} {'useful':>6} {'waves':>5} {'basic':>5} {'bound':>5} "
            f"{'TFLOP/s':>7} {'limit':8} best")
    lines = [head, '-' * len(head)]
    for r in records:
        lines.append(
            f"{r['kernel']:8} {_shape_label(r):22} {r['dtype']:5} {r['arch']:5} "
            f"{r['config']:28} {r['regs']:4d} {r['spills']:5d} {r['smem']:6d} "
            f"{r['occupancy']:4.2f} {r['loop_instructions']:5d} {100 * r['ffma_share']:5.1f} "
            f"{100 * r['mma_share']:5.1f} {r['useful_fraction']:6.3f} {r['waves']:5d} "
            f"{r['bound_basic']:5.3f} {r['bound']:5.3f} {r['useful_tflops']:7.1f} "
            f"{r['limiter']:8} {'*' if r.get('best_for_shape') else ''}")
    return '\n'.join(lines)


def format_summary(records: Sequence[dict]) -> str:
    """One row per (workload, kernel, shape, dtype, arch): the best config (refined model),
    its bound by both models, what limits it, and the range over the configs inspected."""
    groups: Dict[tuple, List[dict]] = {}
    for r in records:
        key = (r.get('workload', ''), r['kernel'], _shape_label(r), r['dtype'], r['arch'])
        groups.setdefault(key, []).append(r)
    head = (f"{'workload':22} {'kernel':8} {'shape (N C HxW K)':22} {'dtype':5} {'arch':5} "
            f"{'best config':28} {'useful':>6} {'waves':>5} {'basic':>5} {'bound':>5} "
            f"{'TFLOP/s':>7} {'limit':8} {'configs':>7} {'bound range':>11}")
    lines = [head, '-' * len(head)]
    for (workload, kernel, shape, dtype, arch), rows in groups.items():
        best = max(rows, key=lambda r: r['bound'])
        lo, hi = min(r['bound'] for r in rows), best['bound']
        lines.append(f"{workload or '-':22} {kernel:8} {shape:22} {dtype:5} {arch:5} "
                     f"{best['config']:28} {best['useful_fraction']:6.3f} {best['waves']:5d} "
                     f"{best['bound_basic']:5.3f} {hi:5.3f} {best['useful_tflops']:7.1f} "
                     f"{best['limiter']:8} {len(rows):7d} {lo:5.3f}-{hi:5.3f}")
    return '\n'.join(lines)


# ------------------------------------------------------------------------------- workloads

#: (depthwise channels, kernel) of RepLKNet-31B's four stages (strides 4, 8, 16, 32).
STAGES_31B = ((128, 31), (256, 29), (512, 27), (1024, 13))


@dataclass(frozen=True)
class Workload:
    """A training setting users run RepLKNet-31B in: images per GPU and the input size."""
    batches: Tuple[int, ...]
    image: Tuple[int, int]  # (H, W) of the network input
    what: str


WORKLOADS: Dict[str, Workload] = {
    'upernet-ade20k-512': Workload((2,), (512, 512), 'UPerNet, ADE20K 512x512 crops'),
    'upernet-cityscapes-769': Workload((2,), (769, 769), 'UPerNet, Cityscapes 769x769 crops'),
    # resized to fit 1333x800 and padded to a multiple of 32: a 3:2 image is 1216x800
    'cascade-coco-1333x800': Workload((1, 2), (800, 1216), 'Cascade R-CNN, COCO 1333x800'),
    'imagenet-224': Workload((64,), (224, 224), 'ImageNet classification 224x224'),
}


def stage_maps(image: Tuple[int, int]) -> List[Tuple[int, int]]:
    """(H, W) of the four stage maps for an input (H, W): a stride-2 conv with padding 1
    gives ceil(x / 2); the stem has two, each transition one."""
    h, w = (-(-v // 4) for v in image)  # ceil(ceil(v / 2) / 2) == ceil(v / 4)
    maps = []
    for _ in STAGES_31B:
        maps.append((h, w))
        h, w = -(-h // 2), -(-w // 2)
    return maps


def workload_shapes(name: str, batch: Optional[int] = None) -> List[Shape]:
    """(N, C, H, W, K) of RepLKNet-31B's large-kernel convs in a workload, for each of its
    batch sizes (or ``batch``); ValueError names an unknown workload."""
    if name not in WORKLOADS:
        raise ValueError(f'unknown workload {name!r}; valid: {", ".join(WORKLOADS)}')
    wl = WORKLOADS[name]
    return [(n, c, h, w, k) for n in ((batch,) if batch else wl.batches)
            for (c, k), (h, w) in zip(STAGES_31B, stage_maps(wl.image))]


def replknet_shapes(arch: str = '31B', image: int = 512, batch: int = 16) -> List[Shape]:
    """(N, C, H, W, K) of the large-kernel depthwise conv of each RepLKNet stage."""
    from mmreplk.models.backbones.replknet import RepLKNet
    cfg = RepLKNet.arch_zoo[arch]
    shapes = []
    for i, (c, k) in enumerate(zip(cfg['channels'], cfg['large_kernel_sizes'])):
        side = image // (4 * 2**i)
        shapes.append((batch, int(c * cfg['dw_ratio']), side, side, k))
    return shapes
