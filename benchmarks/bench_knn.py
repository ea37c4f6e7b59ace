"""Time and peak extra memory of univlg.geometry.knn for N = M points, k = 8 and 16.

Each case runs in a fresh subprocess so that its peak memory is its own:
- CPU backends: peak resident set size (``resource.getrusage(...).ru_maxrss``) after the search minus before it
  (the points are created before the first reading), which also sees scipy's C allocations;
- CUDA: ``torch.cuda.max_memory_allocated()`` minus the memory allocated before the search.
Times are the best of ``--repeat`` runs. Usage::

    python benchmarks/bench_knn.py                       # default sizes, kdtree (+ cuda when available)
    python benchmarks/bench_knn.py --sizes 10000 50000 --ks 8 --backends torch-cpu
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time

DEFAULT_SIZES = [10_000, 50_000, 100_000, 200_000, 500_000]


def run_case(backend: str, size: int, k: int, repeat: int, seed: int) -> dict:
    """Measure one case in this process; returns seconds (best of repeat) and peak extra bytes."""
    import torch

    import univlg.geometry as g

    device = "cuda" if backend == "cuda" else "cpu"
    knn_backend = "kdtree" if backend == "kdtree" else "torch"
    gen = torch.Generator().manual_seed(seed)
    query = (torch.rand(size, 3, generator=gen) * 10).to(device)
    ref = (torch.rand(size, 3, generator=gen) * 10).to(device)
    if device == "cuda":
        g.knn(query[:1000], ref[:1000], k, backend=knn_backend)  # warm-up: CUDA context and kernels
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        dist, idx = g.knn(query, ref, k, backend=knn_backend)
        if device == "cuda":
            torch.cuda.synchronize()
        best = min(best, time.perf_counter() - start)
        del dist, idx
    if device == "cuda":
        extra = torch.cuda.max_memory_allocated() - base
    else:
        extra = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 - rss_before
    return {"seconds": best, "extra_bytes": extra}


def measure_in_subprocess(backend: str, size: int, k: int, repeat: int, seed: int) -> dict:
    command = [sys.executable, __file__, "--worker", backend, str(size), str(k), str(repeat), str(seed)]
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0:
        return {"error": result.stderr.strip().splitlines()[-1] if result.stderr.strip() else "failed"}
    return json.loads(result.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=DEFAULT_SIZES, help="N = M values")
    parser.add_argument("--ks", type=int, nargs="+", default=[8, 16])
    parser.add_argument(
        "--backends",
        nargs="+",
        choices=["kdtree", "torch-cpu", "cuda"],
        help="default: kdtree, torch-cpu up to --torch-cpu-max points, and cuda when available",
    )
    parser.add_argument("--torch-cpu-max", type=int, default=10_000, help="largest size for torch-cpu by default")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--worker", nargs=5, help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.worker:
        backend, size, k, repeat, seed = args.worker
        print(json.dumps(run_case(backend, int(size), int(k), int(repeat), int(seed))))
        return

    import torch

    backends = args.backends
    explicit = backends is not None
    if backends is None:
        backends = ["kdtree", "torch-cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    device_name = torch.cuda.get_device_name() if "cuda" in backends and torch.cuda.is_available() else "-"
    print(f"torch {torch.__version__}, CPU threads {torch.get_num_threads()}, CUDA device: {device_name}")
    print("uniform random points in a 10 m cube; time = best of", args.repeat, "runs; memory = peak extra")
    print(f"| {'backend':<9} | {'N = M':>7} | {'k':>2} | {'time (s)':>8} | {'peak extra (MiB)':>16} |")
    print(f"|{'-' * 11}|{'-' * 8}:|{'-' * 3}:|{'-' * 9}:|{'-' * 17}:|")
    for backend in backends:
        for size in args.sizes:
            if backend == "torch-cpu" and size > args.torch_cpu_max and not explicit:
                continue
            for k in args.ks:
                result = measure_in_subprocess(backend, size, k, args.repeat, args.seed)
                if "error" in result:
                    print(f"| {backend:<9} | {size:>7} | {k:>2} | failed: {result['error']} |")
                    continue
                mib = result["extra_bytes"] / 2**20
                print(f"| {backend:<9} | {size:>7} | {k:>2} | {result['seconds']:>8.3f} | {mib:>16.1f} |", flush=True)


if __name__ == "__main__":
    main()
