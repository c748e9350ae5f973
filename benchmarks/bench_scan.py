"""Speed of the propagation op: compiled kernels vs the PyTorch reference, and vs memory traffic.

Prints one table, all numbers measured in this run:
  * forward and forward+backward time, compiled vs reference, and their ratio;
  * the compiled forward at 512², C=32, as a multiple of the memory-traffic floor
    (bytes the op must move ÷ copy bandwidth measured here with a large tensor copy).

Usage: python benchmarks/bench_scan.py [--threads N] [--repeat R]
"""
from __future__ import annotations

import argparse
import time

import tpn_cli  # noqa: F401  (first: sets tpn's allocator settings before torch loads)
import tpn_cli.ops as ops
from tpn_cli.ops import compiled, reference

import torch

CASES = [  # (label, N, C, H, W, shared gates)
    ("training shape", 8, 32, 64, 64, True),
    ("512², C=32", 1, 32, 512, 512, True),
    ("512², C=32, per-channel gates", 1, 32, 512, 512, False),
    ("1080p, C=2", 1, 2, 1080, 1920, True),
]


def best_time(fn, repeat: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def copy_bandwidth(repeat: int) -> float:
    """Bytes per second of a large out-of-place copy (read + write counted)."""
    src = torch.rand(64 * 1024 * 1024)  # 256 MiB
    dst = torch.empty_like(src)
    t = best_time(lambda: dst.copy_(src), repeat)
    return 2 * src.numel() * src.element_size() / t


def scan_bytes(n: int, c: int, h: int, w: int, shared: bool) -> int:
    """Minimum traffic of the forward op: read x and the 12 gate maps, write 4 outputs."""
    cw = 1 if shared else c
    return 4 * n * h * w * (c + 12 * cw + 4 * c)


def inputs(n, c, h, w, shared, grad=False):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(n, c, h, w, generator=g).requires_grad_(grad)
    wt = ops.normalize_gates(torch.randn(n, 4, 3, 1 if shared else c, h, w, generator=g)).requires_grad_(grad)
    return x, wt


def fwd(impl, x, w):
    with torch.no_grad():
        impl.scan(x, w)


def fwd_bwd(impl, x, w):
    impl.scan(x, w).sum().backward()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    bw = copy_bandwidth(args.repeat)
    print(f"threads: {args.threads}   copy bandwidth: {bw / 1e9:.1f} GB/s\n")
    print(f"| case | pass | compiled (ms) | reference (ms) | speed-up |")
    print(f"|---|---|---|---|---|")
    floors = []
    for label, n, c, h, w, shared in CASES:
        x, wt = inputs(n, c, h, w, shared)
        t_c = best_time(lambda: fwd(compiled, x, wt), args.repeat)
        t_r = best_time(lambda: fwd(reference, x, wt), 1)
        print(f"| {label} | forward | {t_c * 1e3:.1f} | {t_r * 1e3:.0f} | {t_r / t_c:.0f}× |")
        if label != "1080p, C=2" and not (h == 512 and not shared):
            xg, wg = inputs(n, c, h, w, shared, grad=True)
            t_cb = best_time(lambda: fwd_bwd(compiled, xg, wg), args.repeat)
            t_rb = best_time(lambda: fwd_bwd(reference, xg, wg), 1)
            print(f"| {label} | forward+backward | {t_cb * 1e3:.1f} | {t_rb * 1e3:.0f} | {t_rb / t_cb:.0f}× |")
        if h == 512:
            floor = scan_bytes(n, c, h, w, shared) / bw
            floors.append((label, t_c, floor))
    print("\n| case | compiled forward (ms) | traffic floor (ms) | multiple of floor |")
    print("|---|---|---|---|")
    for label, t, floor in floors:
        print(f"| {label} | {t * 1e3:.1f} | {floor * 1e3:.1f} | {t / floor:.1f}× |")


if __name__ == "__main__":
    main()
