"""Throughput / memory / profile: mmreplk.analysis.benchmark and
tools/analysis_tools/benchmark.py. Timings come from a fake clock (no timing
assertion depends on the machine's speed)."""
import json

import pytest
import torch
import torch.nn as nn
from conftest import TINY_ARCH, import_tool

import mmreplk.analysis.benchmark as bench
from mmreplk.analysis.benchmark import (PeakMemory, benchmark, build_swin_b,
                                        dwconv_time_share, large_kernel_convs,
                                        time_iterations)
from mmreplk.models import RepLKNet


@pytest.fixture(autouse=True)
def one_thread():
    """The test machine is shared: one thread avoids OpenMP oversubscription stalls."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


class FakeClock:
    """Stands for time.perf_counter: advances only when told."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch) -> FakeClock:
    fake = FakeClock()
    monkeypatch.setattr(bench.time, 'perf_counter', fake)
    return fake


class Ticking(nn.Conv2d):
    """A depthwise conv whose forward takes ``cost`` fake seconds."""

    def __init__(self, clock: FakeClock, cost: float, kernel: int) -> None:
        super().__init__(3, 3, kernel, padding=kernel // 2, groups=3)
        self.clock, self.cost = clock, cost

    def forward(self, x):
        self.clock.now += self.cost
        return super().forward(x)


def test_time_iterations_times_each_call(clock):
    calls = []

    def fn():
        calls.append(1)
        clock.now += len(calls)  # call i takes i seconds

    times = time_iterations(fn, 'cpu', warmup=3, iters=4)
    assert len(calls) == 7 and times == [4, 5, 6, 7]


def test_peak_memory_sees_a_large_allocation():
    with PeakMemory('cpu') as mem:
        x = torch.ones(50 * 2**20)  # 200 MiB, touched
        del x
    assert mem.mb is not None and mem.mb >= 150


def test_benchmark_infer_and_train_step(clock, tiny_arch):
    torch.manual_seed(0)
    model = RepLKNet(arch=tiny_arch)
    model.register_forward_pre_hook(lambda *_: setattr(clock, 'now', clock.now + 0.5))
    before = [p.detach().clone() for p in model.parameters()]
    r = benchmark(model, 2, (32, 48), 'infer', warmup=1, iters=3)
    assert (r['median_s'], r['images_per_s'], r['shape']) == (0.5, 4.0, (32, 48))
    assert not model.training
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters()))
    r = benchmark(model, 2, (32, ), 'train', warmup=1, iters=2)
    assert model.training and r['mode'] == 'train' and r['shape'] == (32, 32)
    assert not all(torch.equal(a, b) for a, b in zip(before, model.parameters()))
    with pytest.raises(ValueError, match='mode'):
        benchmark(model, 1, (32, ), 'eval')


def test_large_kernel_convs(tiny_arch):
    model = RepLKNet(arch=tiny_arch)
    layers, kernels = tiny_arch['layers'], tiny_arch['large_kernel_sizes']

    def expected(k_min):  # one large depthwise conv per RepLK block (the 3x3 small
        return sum(n for n, k in zip(layers, kernels) if k >= k_min)  # branch: no)

    assert len(large_kernel_convs(model, 7)) == expected(7)
    assert len(large_kernel_convs(model, 5)) == expected(5)
    model.switch_to_deploy()
    assert len(large_kernel_convs(model, 7)) == expected(7)


def test_dwconv_time_share(clock):
    """Hooks time exactly the large-kernel convs: 3 of the 4 fake seconds."""
    model = nn.Sequential(Ticking(clock, 1.0, 3), Ticking(clock, 3.0, 7)).eval()
    s = dwconv_time_share(model, 1, (16, ), warmup=1, iters=2, min_kernel=7)
    assert s == dict(num_convs=1, share=0.75, median_s=4.0)


@pytest.mark.slow
def test_swin_b_settings():
    """Full size (mmseg's Swin cannot be built on the meta device)."""
    model = build_swin_b(224)
    n = sum(p.numel() for p in model.parameters())
    assert 86e6 < n < 88.5e6  # Swin-B: 88M with its 1000-class head (1.03M)
    assert [len(s.blocks) for s in model.stages] == [2, 2, 18, 2]
    assert [s.blocks[0].attn.w_msa.num_heads for s in model.stages] == [4, 8, 16, 32]
    assert model.stages[0].blocks[0].attn.w_msa.window_size == (7, 7)
    assert model.stages[0].blocks[0].attn.w_msa.embed_dims == 128


def test_benchmark_tool(tmp_path, capsys, monkeypatch):
    tool = import_tool('analysis_tools/benchmark.py')
    # the rows and ratios are the point here, not Swin-B itself (built full size in
    # test_swin_b_settings): a tiny stand-in
    monkeypatch.setattr(tool, 'build_swin_b', lambda img_size: RepLKNet(arch=TINY_ARCH))
    out = tmp_path / 'b.json'
    res = tool.main(['--arch', json.dumps(TINY_ARCH), '--batch', '2', '--shape', '32',
                     '--warmup', '1', '--iters', '2', '--train', '--profile',
                     '--compare', 'swin-b', '--threads', '1', '--json', str(out)])
    text = capsys.readouterr().out
    assert 'images/s' in text and 'vs Swin-B' in text and 'depthwise convs' in text
    rows = res['rows']
    key = [(r['model'][:4], r['form'], r['dwconv'], r['mode']) for r in rows]
    assert key == [('RepL', 'train', 'stock', 'infer'), ('RepL', 'train', 'stock', 'train'),
                   ('RepL', 'train', 'fast', 'infer'), ('RepL', 'train', 'fast', 'train'),
                   ('RepL', 'deploy', 'stock', 'infer'), ('RepL', 'deploy', 'fast', 'infer'),
                   ('Swin', '-', '-', 'infer'), ('Swin', '-', '-', 'train')]
    ratios = {r['name']: r['ratio'] for r in res['ratios']}
    swin = rows[6]['images_per_s']
    name = 'RepLKNet-custom'
    assert ratios[f'{name} train/stock infer vs Swin-B'] == pytest.approx(
        rows[0]['images_per_s'] / swin)
    assert ratios[f'{name} deploy/fast infer vs stock'] == pytest.approx(
        rows[5]['images_per_s'] / rows[4]['images_per_s'])
    assert len(res['dwconv_share']) == 4
    assert json.load(open(out))['rows'][0]['batch'] == 2
    assert res['threads'] == 1 and torch.get_num_threads() == 1  # fixture's value
    res = tool.main(['--arch', json.dumps(TINY_ARCH), '--deploy', '--impls', 'fast',
                     '--shape', '32', '--iters', '1', '--warmup', '0', '--train'])
    assert [(r['form'], r['mode']) for r in res['rows']] == [('deploy', 'infer')]
