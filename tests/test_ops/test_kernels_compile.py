"""Ahead-of-time compilation of the Triton kernels for sm_80 and sm_90 (no GPU, no CUDA
driver): every kernel x every config of the tuning spaces compiles without spills, and the
static inspection (mmreplk.ops.kernel_model) reads the SASS it is built on correctly."""
import importlib.util
import json

import pytest

from mmreplk.ops import kernel_model as K

from conftest import ROOT

triton = pytest.importorskip('triton', reason='triton is not installed')
tl = pytest.importorskip('triton.language')

# One map per tile width of the spaces (16..128 columns) at batch 16 and batch 1, so that
# every config of the spaces is kept at one of them; K = 13 keeps the compiles quick (the
# tool reports K = 31).
SHAPES = [(n, 64, s, s, 13) for n in (16, 1) for s in (128, 64, 32, 16)]


def test_every_kernel_and_config_compiles_without_spills():
    """Every config once, for sm_90 (the GPU check's H100 / H200), at the first shape that
    keeps it; the inspection tool covers sm_80. Static-bound floors (first model): 0.2, and
    0.15 for the banded configs of batch 1-2, whose programs at these small test maps walk
    few rows per set-up."""
    from mmreplk.ops import dwconv_triton as m
    todo = K.tasks(SHAPES, ['fp32'], ['sm_90'], modules=[m])
    assert {t.kernel for t in todo} == {'fwd', 'dgrad', 'wgrad'}
    labels = {spec.config for shape in SHAPES for spec in m.aot_specs(shape, 'fp32')}
    assert len(labels) == len(m.FWD_SPACE) + len(m.WGRAD_SPACE)  # the whole spaces
    # forward and input gradient share one binary: compile it once
    for shape in SHAPES:
        specs = {(s.kernel, s.config): s for s in m.aot_specs(shape, 'fp32')}
        for (kernel, config), spec in specs.items():
            if kernel == 'dgrad':
                fwd = specs['fwd', config]
                assert (spec.fn, spec.signature, spec.constexprs) == (
                    fwd.fn, fwd.signature, fwd.constexprs)
    once = {}
    for t in todo:
        if t.kernel != 'dgrad':
            once.setdefault((t.kernel, t.config), t)
    records = K.inspect_tasks(list(once.values()), jobs=2)
    assert len(records) == len(labels)
    for r in records:
        where = f"{r['kernel']} {r['config']} {r['arch']}"
        assert r['spills'] == 0, f'{where} spills {r["spills"]} registers'
        assert r['loop_found'] and r['counts'].get('ffma', 0) > 0, where
        floor = 0.15 if ',R=' in r['config'] else 0.2
        assert r['bound_basic'] >= floor, f"{where}: static bound {r['bound_basic']:.3f}"
        assert r['limiter'] in K.LIMITERS and 0 < r['bound'] <= r['bound_basic'] + 1e-9, where


def test_autotuner_times_only_the_kept_configs():
    from mmreplk.ops import dwconv_triton as m
    k_ = m.kernels(False)
    for tuned, pick, meta in ((k_.fwd_tuned, m.fwd_configs, m._fwd_meta),
                              (k_.wgrad_tuned, m.wgrad_configs, m._wgrad_meta)):
        for n, c, h, w, k in ((16, 256, 64, 64, 29), (16, 1024, 16, 16, 13), (1, 3, 9, 7, 5),
                              (2, 512, 32, 32, 27), (2, 256, 64, 64, 29)):
            vec = m._vec(w)
            kept = tuned.early_config_prune(tuned.configs, dict(N=n, C=c, H=h, WV=w // vec),
                                            KH=k, KW=k, VEC=vec)
            assert [c.kwargs for c in kept] == [meta(c) for c in pick((n, c, h, w, k))]
            assert [c.num_warps for c in kept] == [c[3] for c in pick((n, c, h, w, k))]


@triton.jit
def _dot_kernel(a_ptr, b_ptr, c_ptr, KT, BM: tl.constexpr, BN: tl.constexpr,
                BK: tl.constexpr):
    rm, rn, rk = tl.arange(0, BM), tl.arange(0, BN), tl.arange(0, BK)
    acc = tl.zeros((BM, BN), dtype=tl.float32)
    for k in range(KT):
        a = tl.load(a_ptr + rm[:, None] * (BK * KT) + k * BK + rk[None, :])
        b = tl.load(b_ptr + (k * BK + rk[:, None]) * BN + rn[None, :])
        acc += tl.dot(a, b)
    tl.store(c_ptr + rm[:, None] * BN + rn[None, :], acc)


@pytest.mark.parametrize('arch,dtype,opcode,kind', [
    ('sm_80', 'bf16', 'HMMA.16816.F32.BF16', 'bf16'),
    ('sm_90', 'bf16', 'HGMMA.64x64x16.F32.BF16', 'bf16'),
    ('sm_90', 'fp32', 'HGMMA.64x64x8.F32.TF32', 'tf32'),
])
def test_mma_accounting_of_a_dot_loop(arch, dtype, opcode, kind):
    """A loop of one 64x64x32 tl.dot per iteration: the tensor instructions of the hot loop
    add up to 64 * 64 * 32 multiply-adds per program, whatever their shape."""
    from mmreplk.ops.aot import AotKernel
    sig = dict(a_ptr=f'*{dtype}', b_ptr=f'*{dtype}', c_ptr='*fp32', KT='i32',
               BM='constexpr', BN='constexpr', BK='constexpr')
    spec = AotKernel('dot', _dot_kernel, sig, dict(BM=64, BN=64, BK=32), num_warps=4,
                     num_stages=2, config='64x64x32', mma=True, useful_fraction=1.0,
                     flops_per_program=64 * 64 * 32 * 8, grid=1024, scalars=dict(KT=8))
    ins = K.inspect_spec(spec, (1, 1, 64, 64, 3), dtype, arch)
    first, last = ins.loop
    assert opcode in {i.opcode for i in ins.instrs[first:last + 1]}
    assert ins.model.mma_macs * spec.num_warps == 64 * 64 * 32
    assert ins.model.mma_kind == kind and ins.record['mma_in_loop']
    assert 0 < ins.record['pipe_bound'] <= 1


def test_sass_parsing_and_opcode_shapes():
    sass = '''
        /*0000*/                   MOV R1, c[0x0][0x28] ;
.L_x_0:
        /*0010*/                   FFMA R2, R3, R4, R2 ;
        /*0020*/              @!P0 LDG.E R3, desc[UR4][R6.64] ;
.L_x_1:
        /*0030*/                   HFMA2.MMA R5, -RZ, RZ, 0, 0 ;
        /*0040*/               @P1 BRA `(.L_x_1) ;
        /*0050*/               @P2 BRA `(.L_x_0) ;
        /*0060*/                   EXIT ;
.L_x_2:
        /*0070*/                   BRA `(.L_x_2);
'''
    instrs, labels = K.parse_sass(sass)
    assert [i.base for i in instrs] == ['MOV', 'FFMA', 'LDG', 'HFMA2', 'BRA', 'BRA', 'EXIT',
                                        'BRA']
    assert instrs[2].pred == '@!P0' and instrs[4].target == '.L_x_1'
    assert K.find_loops(instrs, labels) == [(1, 5), (3, 4)]  # not the trap after EXIT
    assert K.hot_loop(instrs, labels) == (1, 5, True)  # the inner loop has no FMA
    assert [K.classify(i) for i in instrs[1:4]] == ['ffma', 'ldg', 'move']
    assert K.mma_shape('HMMA.16816.F32.BF16') == (16, 8, 16, 'bf16', 1)
    assert K.mma_shape('HMMA.1688.F32.TF32') == (16, 8, 8, 'tf32', 1)
    assert K.mma_shape('HGMMA.64x128x16.F32.BF16') == (64, 128, 16, 'bf16', 4)
    assert K.mma_shape('FFMA') is None


def _tool():
    path = ROOT / 'tools' / 'analysis_tools' / 'inspect_kernels.py'
    spec = importlib.util.spec_from_file_location('inspect_kernels', path)
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    return tool


def test_tool_json_and_errors(tmp_path, capsys):
    tool = _tool()
    out = tmp_path / 'k.json'
    base = ['--shapes', '16,1024,16,16,13', '--arch', 'sm_90', '--dtype', 'fp32']
    assert tool.main(base + ['--kernel', 'fwd', '--json', str(out)]) == 0
    records = json.loads(out.read_text())
    assert len(records) == 2 and sum(r['best_for_shape'] for r in records) == 1
    keys = {'kernel', 'config', 'shape', 'batch', 'workload', 'dtype', 'arch', 'regs',
            'spills', 'smem', 'loop_instructions', 'ffma_share', 'mma_in_loop',
            'useful_fraction', 'bound', 'bound_basic', 'limiter', 'waves', 'l2_bytes',
            'best_for_shape'}
    assert keys <= set(records[0]) and records[0]['shape']['K'] == 13
    assert records[0]['batch'] == 16 and records[0]['workload'] == ''
    assert records[0]['limiter'] in K.LIMITERS
    assert records[0]['config'] in capsys.readouterr().out
    assert tool.main(base + ['--sass', 'fwd', records[0]['config']]) == 0
    text = capsys.readouterr().out
    assert 'FFMA' in text and 'limiter:' in text
    for args, word in ((['--kernel', 'fwdx'], 'kernel'), (['--sass', 'fwd', 'BH=9'], 'config'),
                       (['--shapes', '1,2,3'], 'shape'), (['--workload', 'ade'], 'workload')):
        assert tool.main(base + args) == 1
        err = capsys.readouterr().err
        assert err.startswith('error:') and word in err, err


def test_tool_selects_workloads():
    """--workload: RepLKNet-31B's stage shapes at the workload's batch sizes, labelled."""
    tool = _tool()
    args = tool.parse_args(['--workload', 'upernet-ade20k-512', 'cascade-coco-1333x800'])
    shapes, names = tool.selected_shapes(args)
    assert shapes[:4] == [(2, 128, 128, 128, 31), (2, 256, 64, 64, 29), (2, 512, 32, 32, 27),
                          (2, 1024, 16, 16, 13)]
    assert shapes[4] == (1, 128, 200, 304, 31) and shapes[8][0] == 2  # batch 1 and 2
    assert names == ['upernet-ade20k-512'] * 4 + ['cascade-coco-1333x800'] * 8
    shapes, names = tool.selected_shapes(tool.parse_args([]))  # default: all + 31b-512 @ 16
    assert set(names) == set(K.WORKLOADS) | {'31b-512'}
    assert (16, 128, 128, 128, 31) in shapes and (64, 1024, 7, 7, 13) in shapes
    shapes, _ = tool.selected_shapes(tool.parse_args(['--workload', 'imagenet-224',
                                                      '--batch', '8']))
    assert {s[0] for s in shapes} == {8}


def test_31b_stages_match_the_backbone():
    from mmreplk.models.backbones.replknet import RepLKNet
    cfg = RepLKNet.arch_zoo['31B']
    assert K.STAGES_31B == tuple(zip((int(c * cfg['dw_ratio']) for c in cfg['channels']),
                                     cfg['large_kernel_sizes']))
    assert K.stage_maps((769, 769)) == [(193, 193), (97, 97), (49, 49), (25, 25)]
