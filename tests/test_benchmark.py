"""Throughput / memory / profile: mmreplk.analysis.benchmark and tools/benchmark.py."""
import json
import os.path as osp
import sys

import pytest
import torch
import torch.nn as nn

from mmreplk.analysis.benchmark import (PeakMemory, benchmark, build_swin_b,
                                        dwconv_time_share, large_kernel_convs,
                                        time_iterations)

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
sys.path.insert(0, osp.join(ROOT, 'tools'))

TINY_ARCH = dict(layers=[1, 1, 1, 1], channels=[8, 8, 8, 8],
                 large_kernel_sizes=[7, 7, 5, 5], small_kernel=3, dw_ratio=1)


@pytest.fixture(autouse=True)
def one_thread():
    """The test machine is shared: one thread avoids OpenMP oversubscription stalls."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def test_time_iterations_counts_calls():
    calls = []
    times = time_iterations(lambda: calls.append(1), 'cpu', warmup=3, iters=4)
    assert len(calls) == 7 and len(times) == 4 and all(t >= 0 for t in times)


def test_peak_memory_sees_a_large_allocation():
    with PeakMemory('cpu') as mem:
        x = torch.ones(50 * 2**20)  # 200 MiB, touched
        del x
    assert mem.mb is not None and 180 <= mem.mb < 2000
    with PeakMemory('cpu') as small:
        torch.ones(10)
    assert small.mb < 50


def test_benchmark_infer_and_train_step():
    from mmreplk.models import RepLKNet
    torch.manual_seed(0)
    model = RepLKNet(arch=TINY_ARCH)
    before = [p.detach().clone() for p in model.parameters()]
    r = benchmark(model, 2, (32, 48), 'infer', warmup=1, iters=3)
    assert r['images_per_s'] == pytest.approx(2 / r['median_s'])
    assert r['shape'] == (32, 48) and r['min_s'] <= r['median_s']
    assert not model.training
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters()))
    r = benchmark(model, 2, (32, ), 'train', warmup=1, iters=2)
    assert model.training and r['mode'] == 'train' and r['shape'] == (32, 32)
    assert not all(torch.equal(a, b) for a, b in zip(before, model.parameters()))
    with pytest.raises(ValueError, match='mode'):
        benchmark(model, 1, (32, ), 'eval')


def test_large_kernel_convs_and_time_share():
    from mmreplk.models import RepLKNet
    model = RepLKNet(arch=TINY_ARCH)
    # stages 0 and 1 have 7x7 kernels; the 3x3 small branches and stem are excluded
    assert len(large_kernel_convs(model, 7)) == 2
    assert len(large_kernel_convs(model, 5)) == 4
    model.switch_to_deploy()
    assert len(large_kernel_convs(model, 7)) == 2
    s = dwconv_time_share(model, 1, (32, ), warmup=1, iters=2)
    assert s['num_convs'] == 2 and 0 < s['share'] < 1
    # a network that is one large depthwise conv spends (almost) all its time in it
    only = nn.Sequential(nn.Conv2d(3, 3, 31, padding=15, groups=3))
    s = dwconv_time_share(only, 1, (64, ), warmup=1, iters=3)
    assert s['num_convs'] == 1 and s['share'] > 0.8


def test_swin_b_settings():
    model = build_swin_b(224)
    n = sum(p.numel() for p in model.parameters())
    assert 86e6 < n < 88.5e6  # Swin-B: 88M with its 1000-class head (1.03M)
    assert [len(s.blocks) for s in model.stages] == [2, 2, 18, 2]
    assert build_swin_b(384).stages[0].blocks[0].attn.w_msa.window_size == (12, 12)
    model.eval()
    with torch.no_grad():
        outs = model(torch.randn(1, 3, 64, 64))
    assert [o.shape[1] for o in outs] == [128, 256, 512, 1024]


def test_benchmark_tool(tmp_path, capsys):
    import benchmark as tool
    out = tmp_path / 'b.json'
    res = tool.main([json.dumps(TINY_ARCH), '--batch', '2', '--shape', '32',
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
    res = tool.main([json.dumps(TINY_ARCH), '--deploy', '--impls', 'fast', '--shape',
                     '32', '--iters', '1', '--warmup', '0', '--train'])
    assert [(r['form'], r['mode']) for r in res['rows']] == [('deploy', 'infer')]
