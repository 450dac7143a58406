#!/usr/bin/python3
"""PyTorch's time for the matmuls `lws bench kernels` times, on the same machine.

    /usr/bin/python3 bench/torch_matmul.py --shapes SHAPES.json [--reps N] [--json OUT]
    /usr/bin/python3 bench/torch_matmul.py --report KERNELS.json [--reps N]

SHAPES.json is a list of {"label", "layout", "m", "n", "k"} (what
`lws bench kernels --torch` writes; an "index" is passed back); --report takes
the matmuls of a "kernels" report (docs/bench-report.md). Layouts are lws's
(src/ops/ops.h):

    NT  C[M,N] = A[M,K] . B[N,K]^T      the forward, y = x W^T
    NN  C[M,N] = A[M,K] . B[K,N]        the input gradient, dx = dy W
    TN  C[M,N] = A[K,M]^T . B[K,N]      the weight gradient, dW = dy^T x

PyTorch gets the transposed views, as its Linear layer does, so the BLAS
sees the same transposes. On a CPU with AVX-512, OpenBLAS is told to use its
SkylakeX kernels (OPENBLAS_CORETYPE, set before torch loads OpenBLAS; pass
--openblas-coretype keep to leave the environment's choice). The library and
core type in use are read back from the loaded OpenBLAS and printed.
"""

import argparse
import ctypes
import json
import os
import statistics
import sys
import time


def cpu_has_avx512():
    try:
        with open("/proc/cpuinfo") as f:
            return any(line.startswith("flags") and " avx512f" in line for line in f)
    except OSError:
        return False


def configure_openblas(coretype, threads):
    """Sets OpenBLAS's environment before torch (and with it OpenBLAS) loads."""
    previous = os.environ.get("OPENBLAS_CORETYPE")
    if coretype == "auto":
        coretype = "SkylakeX" if cpu_has_avx512() else "keep"
    if coretype != "keep":
        os.environ["OPENBLAS_CORETYPE"] = coretype
    os.environ.setdefault("OPENBLAS_NUM_THREADS", str(threads))
    return previous


def openblas_info():
    """The OpenBLAS this process loaded (through torch): path, core, config."""
    path = None
    try:
        with open("/proc/self/maps") as f:
            for line in f:
                if "openblas" in line.lower() and ".so" in line:
                    path = line.split()[-1]
                    break
    except OSError:
        pass
    if not path:
        return {"library": None, "corename": None, "config": None}
    lib = ctypes.CDLL(path)  # already loaded: the same handle
    info = {"library": path, "corename": None, "config": None}
    for key, symbol in (("corename", "openblas_get_corename"), ("config", "openblas_get_config")):
        fn = getattr(lib, symbol, None)
        if fn is not None:
            fn.restype = ctypes.c_char_p
            info[key] = fn().decode()
    threads = getattr(lib, "openblas_get_num_threads", None)
    if threads is not None:
        info["threads"] = threads()
    return info


def load_shapes(args):
    if args.shapes:
        with open(args.shapes) as f:
            shapes = json.load(f)
    else:
        with open(args.report) as f:
            report = json.load(f)
        kernels = report.get("kernels") if isinstance(report, dict) else None
        if not isinstance(kernels, list):
            sys.exit(f"{args.report}: no \"kernels\" list: not a kernels report")
        shapes = [dict(k, index=i) for i, k in enumerate(kernels) if k.get("op") == "matmul"]
    for i, s in enumerate(shapes):
        if s.get("layout") not in ("NT", "NN", "TN") or not all(
            isinstance(s.get(d), int) and s[d] > 0 for d in ("m", "n", "k")
        ):
            sys.exit(f"shape {i}: needs layout NT, NN or TN and positive integers m, n, k: {s}")
        s.setdefault("index", i)
        s.setdefault("label", f"{s['layout']} {s['m']}x{s['n']}x{s['k']}")
    return shapes


def operands(torch, layout, m, n, k, device, dtype):
    """The two operands of C = op(A) op(B) as views, stored as lws stores them."""
    def make(rows, cols):
        return torch.full((rows, cols), 0.01, device=device, dtype=dtype)

    if layout == "NT":
        return make(m, k), make(n, k).t()
    if layout == "NN":
        return make(m, k), make(k, n)
    return make(k, m).t(), make(k, n)


def time_shape(torch, shape, reps, device, dtype):
    a, b = operands(torch, shape["layout"], shape["m"], shape["n"], shape["k"], device, dtype)
    out = torch.empty(shape["m"], shape["n"], device=device, dtype=dtype)
    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
    torch.mm(a, b, out=out)  # warm-up
    sync()
    times = []
    for _ in range(reps):
        start = time.perf_counter()
        torch.mm(a, b, out=out)
        sync()
        times.append((time.perf_counter() - start) * 1e3)
    return statistics.median(times), min(times)


def main(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--shapes", help="a JSON list of {layout, m, n, k}")
    source.add_argument("--report", help="an lws kernels report: time its matmuls")
    parser.add_argument("--reps", type=int, default=3, help="timed repetitions (median)")
    parser.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    parser.add_argument("--threads", type=int, default=len(os.sched_getaffinity(0)),
                        help="CPU threads (default: every CPU this process may use)")
    parser.add_argument("--openblas-coretype", default="auto",
                        help="OPENBLAS_CORETYPE to set (auto: SkylakeX with AVX-512; keep: "
                             "leave the environment's)")
    parser.add_argument("--json", help="write {torch, results} here")
    args = parser.parse_args(argv)
    if args.reps < 1:
        parser.error("--reps must be at least 1")
    previous = configure_openblas(args.openblas_coretype, args.threads)

    import torch  # after OpenBLAS's environment is set

    torch.set_num_threads(args.threads)
    shapes = load_shapes(args)
    blas = openblas_info() if args.device == "cpu" else None
    info = {
        "version": torch.__version__,
        "device": args.device,
        "threads": torch.get_num_threads(),
        "dtype": "float32",
        "blas": blas,
        "openblas_coretype_env": os.environ.get("OPENBLAS_CORETYPE"),
    }
    if args.device == "cuda":
        info["device_name"] = torch.cuda.get_device_name()
        torch.backends.cuda.matmul.allow_tf32 = False  # fp32, as lws computes
    print(f"PyTorch {torch.__version__} on {args.device}, {info['threads']} threads", end="")
    if blas is not None:
        print(f"; BLAS {blas['library']}, OpenBLAS core {blas['corename']}"
              f" (OPENBLAS_CORETYPE={os.environ.get('OPENBLAS_CORETYPE')}"
              f"{', was ' + previous if previous and previous != os.environ.get('OPENBLAS_CORETYPE') else ''})",
              end="")
    print()
    results = []
    for s in shapes:
        ms, fastest = time_shape(torch, s, args.reps, args.device, torch.float32)
        gflops = 2.0 * s["m"] * s["n"] * s["k"] / (ms * 1e-3) / 1e9
        results.append({"index": s["index"], "label": s["label"], "layout": s["layout"],
                        "m": s["m"], "n": s["n"], "k": s["k"], "ms": ms, "ms_min": fastest,
                        "gflops": gflops})
        if not args.json:
            print(f"  {s['label']:<40} {ms:10.3f} ms {gflops:9.1f} GFLOP/s")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"torch": info, "results": results}, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
