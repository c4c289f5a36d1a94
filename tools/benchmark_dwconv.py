"""Benchmark the fast depthwise conv (mmreplk.ops) against stock F.conv2d.

For RepLKNet-31B's four stage shapes, times forward and forward+backward of stock
``F.conv2d`` and of ``depthwise_conv2d`` in the same run (the forward of both on NCHW and on
channels_last inputs), and prints ms, speedups and GFLOP/s (FLOPs = 2 x MACs of the taps that fall
inside the image; forward+backward counts three times that). On CUDA it also prints the
fraction of the fp32-FMA roofline (SMs x 128 FMA/clk x 1.98 GHz unless --peak-tflops).
The end-to-end line times one RepLKNet-31B training step (forward, backward of the summed
outputs, SGD step) the stock way (NCHW, F.conv2d) vs mmreplk's defaults.

    python tools/benchmark_dwconv.py --device cpu --shapes 31b-512 31b-224
    python tools/benchmark_dwconv.py --device cuda --dtype bf16 fp32
"""
import argparse
import statistics
import time

import torch
import torch.nn.functional as F

from mmreplk.ops import depthwise_conv2d
from mmreplk.ops.dwconv import resolve_impl

STAGES_31B = [(128, 31), (256, 29), (512, 27), (1024, 13)]  # (channels, kernel) at stride 4..32
BATCH = {'cpu': {224: 8, 512: 2}, 'cuda': {224: 64, 512: 16}}
DTYPES = {'fp32': torch.float32, 'bf16': torch.bfloat16, 'fp16': torch.float16}


def stage_shapes(name: str, device: str):
    """[(label, N, C, H, K)] for a shape-set name such as '31b-224' (batch per device)."""
    arch, size = name.split('-')
    if arch != '31b':
        raise ValueError(f'unknown shape set {name!r}; use 31b-224, 31b-512, ...')
    size = int(size)
    n = BATCH[device].get(size, BATCH[device][224] if size < 512 else BATCH[device][512])
    return [(f'{name} s{i + 1}', n, c, size // 2**(i + 2), k)
            for i, (c, k) in enumerate(STAGES_31B)]


def inside_taps(size: int, k: int) -> int:
    """Sum over output positions of one axis of the kernel taps that land inside it."""
    p = k // 2
    return sum(min(size - 1, o + p) - max(0, o - p) + 1 for o in range(size))


def timeit(fn, device: str, repeats: int) -> float:
    """Median wall time of ``fn`` in ms after one warm-up call."""
    fn()
    times = []
    for _ in range(repeats):
        if device == 'cuda':
            torch.cuda.synchronize()
        start = time.perf_counter()
        fn()
        if device == 'cuda':
            torch.cuda.synchronize()
        times.append((time.perf_counter() - start) * 1e3)
    return statistics.median(times)


def peak_tflops(device: str, override: float) -> float:
    if override:
        return override
    if device != 'cuda':
        return 0.
    sms = torch.cuda.get_device_properties(0).multi_processor_count
    return sms * 128 * 2 * 1.98e9 / 1e12


def bench_shape(n, c, h, k, dtype, device, repeats):
    """Timings (ms) of the stock and fast forward / forward+backward at one shape."""
    x = torch.randn(n, c, h, h, device=device, dtype=dtype, requires_grad=True)
    w = torch.randn(c, 1, k, k, device=device, dtype=dtype, requires_grad=True)
    g = torch.randn(n, c, h, h, device=device, dtype=dtype)
    x_cl = x.detach().contiguous(memory_format=torch.channels_last)

    def stock(inp):
        return F.conv2d(inp, w, None, 1, k // 2, 1, c)

    def fast(inp):
        return depthwise_conv2d(inp, w)

    def fwd_bwd(op):
        def run():
            x.grad = w.grad = None
            op(x).backward(g)
        return run

    with torch.no_grad():
        res = dict(fwd_stock=timeit(lambda: stock(x), device, repeats),
                   fwd_stock_cl=timeit(lambda: stock(x_cl), device, repeats),
                   fwd_fast=timeit(lambda: fast(x), device, repeats),
                   fwd_fast_cl=timeit(lambda: fast(x_cl), device, repeats))
    res['fb_stock'] = timeit(fwd_bwd(stock), device, max(1, repeats // 2))
    res['fb_fast'] = timeit(fwd_bwd(fast), device, repeats)
    return res


def train_step_ms(stock, device, dtype, batch, size, repeats):
    """Median ms of one RepLKNet-31B training step, stock (NCHW and F.conv2d, as the
    reference implementations run it) or with mmreplk's defaults."""
    from mmreplk.models import RepLKNet
    kwargs = dict(dwconv_impl='torch', channels_last=False) if stock else {}
    model = RepLKNet(arch='31B', **kwargs).to(device)
    opt = torch.optim.SGD(model.parameters(), lr=1e-3)
    x = torch.randn(batch, 3, size, size, device=device)

    def step():
        opt.zero_grad(set_to_none=True)
        with torch.autocast(device, dtype=dtype, enabled=dtype != torch.float32):
            outs = model(x)
            loss = sum(o.float().mean() for o in outs)
        loss.backward()
        opt.step()

    return timeit(step, device, repeats)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--device', choices=['cpu', 'cuda'], default=None)
    parser.add_argument('--dtype', nargs='+', choices=list(DTYPES), default=['fp32'])
    parser.add_argument('--shapes', nargs='+', default=['31b-512', '31b-224'])
    parser.add_argument('--repeats', type=int, default=3)
    parser.add_argument('--peak-tflops', type=float, default=0.,
                        help='fp32 FMA peak for the roofline column (default: from the GPU)')
    parser.add_argument('--e2e', choices=['on', 'off', 'only'], default='on',
                        help='the RepLKNet-31B training-step line')
    parser.add_argument('--e2e-batch', type=int, default=None)
    parser.add_argument('--e2e-size', type=int, default=None)
    args = parser.parse_args()
    device = args.device or ('cuda' if torch.cuda.is_available() else 'cpu')
    probe = torch.empty(1, device=device)
    print(f'device: {torch.cuda.get_device_name(0) if device == "cuda" else "cpu"}, '
          f'threads {torch.get_num_threads()}, torch {torch.__version__}, '
          f'fast impl: {resolve_impl(None, probe)}')
    peak = peak_tflops(device, args.peak_tflops)
    if args.e2e != 'only':
        head = (f'{"shape":12} {"dtype":5} {"N":>3} {"C":>5} {"HxW":>7} {"K":>3} | '
                f'{"fwd stock":>9} {"(CL)":>8} {"fast":>8} {"(CL)":>8} {"x":>6} {"GF/s":>8} | '
                f'{"f+b stock":>9} {"fast":>8} {"x":>6} {"GF/s":>8}')
        if peak:
            head += f' | {"fwd %roof":>9} {"f+b %roof":>9}'
        print(head)
        for dname in args.dtype:
            for name in args.shapes:
                for label, n, c, h, k in stage_shapes(name, device):
                    r = bench_shape(n, c, h, k, DTYPES[dname], device, args.repeats)
                    flops = 2 * n * c * inside_taps(h, k)**2
                    best_fast = min(r['fwd_fast'], r['fwd_fast_cl'])
                    gf_f = flops / best_fast / 1e6
                    gf_fb = 3 * flops / r['fb_fast'] / 1e6
                    line = (f'{label:12} {dname:5} {n:3d} {c:5d} {f"{h}x{h}":>7} {k:3d} | '
                            f'{r["fwd_stock"]:9.2f} {r["fwd_stock_cl"]:8.2f} {r["fwd_fast"]:8.2f} '
                            f'{r["fwd_fast_cl"]:8.2f} '
                            f'{min(r["fwd_stock"], r["fwd_stock_cl"]) / best_fast:6.2f} '
                            f'{gf_f:8.1f} | {r["fb_stock"]:9.1f} {r["fb_fast"]:8.1f} '
                            f'{r["fb_stock"] / r["fb_fast"]:6.2f} {gf_fb:8.1f}')
                    if peak:
                        line += f' | {gf_f / peak / 10:8.1f}% {gf_fb / peak / 10:8.1f}%'
                    print(line, flush=True)
        print('fwd x = best stock layout / best fast layout (RepLKNet feeds channels_last '
              'on CPU); f+b x = stock NCHW / fast NCHW')
    if args.e2e != 'off':
        batch = args.e2e_batch or (2 if device == 'cpu' else 16)
        size = args.e2e_size or (256 if device == 'cpu' else 512)
        dtype = torch.float32 if device == 'cpu' else torch.bfloat16
        reps = 1 if device == 'cpu' else 5
        stock = train_step_ms(True, device, dtype, batch, size, reps)
        fast = train_step_ms(False, device, dtype, batch, size, reps)
        print(f'RepLKNet-31B train step, batch {batch} @{size}, {str(dtype)[6:]}: '
              f'stock {stock:.0f} ms, fast {fast:.0f} ms, speedup {stock / fast:.2f}x')


if __name__ == '__main__':
    main()
