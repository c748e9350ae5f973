"""Speed of the propagation op: compiled kernels vs the PyTorch reference, and vs memory traffic.

Prints one table, all numbers measured in this run:
  * forward and forward+backward time, compiled vs reference, and their ratio;
  * the compiled forward at 512², C=32, as a multiple of the memory-traffic floor
    (bytes the op must move ÷ copy bandwidth measured here with a large tensor copy).
When a CUDA GPU is present, a second table does the same for the CUDA kernels (up to
4K frames; floor from the GPU's own copy bandwidth). --device cuda runs only that one.

Usage: python benchmarks/bench_scan.py [--threads N] [--repeat R] [--device cpu|cuda|all]
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


def cuda_time(fn, repeat: int) -> float:
    """best_time for CUDA work: the clock stops when the GPU has finished."""
    def synced():
        fn()
        torch.cuda.synchronize()
    return best_time(synced, repeat)


def copy_bandwidth(repeat: int, device: str = "cpu") -> float:
    """Bytes per second of a large out-of-place copy (read + write counted)."""
    src = torch.rand(64 * 1024 * 1024, device=device)  # 256 MiB
    dst = torch.empty_like(src)
    timer = cuda_time if device == "cuda" else best_time
    t = timer(lambda: dst.copy_(src), repeat)
    return 2 * src.numel() * src.element_size() / t


def scan_bytes(n: int, c: int, h: int, w: int, shared: bool) -> int:
    """Minimum traffic of the forward op: read x and the 12 gate maps, write 4 outputs."""
    cw = 1 if shared else c
    return 4 * n * h * w * (c + 12 * cw + 4 * c)


def inputs(n, c, h, w, shared, grad=False, device="cpu"):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(n, c, h, w, generator=g).to(device).requires_grad_(grad)
    wt = ops.normalize_gates(torch.randn(n, 4, 3, 1 if shared else c, h, w, generator=g))
    return x, wt.to(device).requires_grad_(grad)


def fwd(impl, x, w):
    with torch.no_grad():
        impl.scan(x, w)


def fwd_bwd(impl, x, w):
    impl.scan(x, w).sum().backward()


CUDA_CASES = [  # (label, N, C, H, W, shared gates)
    ("training shape", 8, 32, 64, 64, True),
    ("512², C=32", 1, 32, 512, 512, True),
    ("512², C=32, per-channel gates", 1, 32, 512, 512, False),
    ("1080p, C=2", 1, 2, 1080, 1920, True),
    ("1080p, C=32", 1, 32, 1080, 1920, True),
    ("4K, C=2", 1, 2, 2160, 3840, True),
]


def cpu_tables(repeat: int) -> None:
    bw = copy_bandwidth(repeat)
    print(f"CPU threads: {torch.get_num_threads()}   copy bandwidth: {bw / 1e9:.1f} GB/s\n")
    print(f"| case | pass | compiled (ms) | reference (ms) | speed-up |")
    print(f"|---|---|---|---|---|")
    floors = []
    for label, n, c, h, w, shared in CASES:
        x, wt = inputs(n, c, h, w, shared)
        t_c = best_time(lambda: fwd(compiled, x, wt), repeat)
        t_r = best_time(lambda: fwd(reference, x, wt), 1)
        print(f"| {label} | forward | {t_c * 1e3:.1f} | {t_r * 1e3:.0f} | {t_r / t_c:.0f}× |")
        if label != "1080p, C=2" and not (h == 512 and not shared):
            xg, wg = inputs(n, c, h, w, shared, grad=True)
            t_cb = best_time(lambda: fwd_bwd(compiled, xg, wg), repeat)
            t_rb = best_time(lambda: fwd_bwd(reference, xg, wg), 1)
            print(f"| {label} | forward+backward | {t_cb * 1e3:.1f} | {t_rb * 1e3:.0f} | {t_rb / t_cb:.0f}× |")
        if h == 512:
            floor = scan_bytes(n, c, h, w, shared) / bw
            floors.append((label, t_c, floor))
    print("\n| case | compiled forward (ms) | traffic floor (ms) | multiple of floor |")
    print("|---|---|---|---|")
    for label, t, floor in floors:
        print(f"| {label} | {t * 1e3:.1f} | {floor * 1e3:.1f} | {t / floor:.1f}× |")


def cuda_table(repeat: int) -> None:
    bw = copy_bandwidth(repeat, "cuda")
    print(f"\nCUDA: {torch.cuda.get_device_name()}   copy bandwidth: {bw / 1e9:.0f} GB/s\n")
    print("| case | forward (ms) | traffic floor (ms) | multiple of floor | forward+backward (ms) |")
    print("|---|---|---|---|---|")
    for label, n, c, h, w, shared in CUDA_CASES:
        x, wt = inputs(n, c, h, w, shared, device="cuda")
        t_f = cuda_time(lambda: fwd(compiled, x, wt), repeat)
        xg, wg = inputs(n, c, h, w, shared, grad=True, device="cuda")
        t_b = cuda_time(lambda: fwd_bwd(compiled, xg, wg), repeat)
        floor = scan_bytes(n, c, h, w, shared) / bw
        print(f"| {label} | {t_f * 1e3:.3f} | {floor * 1e3:.3f} | {t_f / floor:.1f}× | {t_b * 1e3:.3f} |")
        del x, wt, xg, wg
        torch.cuda.empty_cache()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--device", choices=("cpu", "cuda", "all"), default="all",
                        help="all (default): the CPU table, and the CUDA one when a GPU is present")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if args.device in ("cpu", "all"):
        cpu_tables(args.repeat)
    if args.device == "cuda" or (args.device == "all" and torch.cuda.is_available()):
        cuda_table(args.repeat)


if __name__ == "__main__":
    main()
