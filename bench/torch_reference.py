#!/usr/bin/python3
"""The PyTorch baseline for `lws bench`: the same model, the same batch shape.

    /usr/bin/python3 bench/torch_reference.py CONFIG [--json REPORT] [--steps N] ...

Builds the model of CONFIG with tests/torch_reference.py's model code (the
independent reference lws's parity tests use), trains it on random tokens
for a few warm-up and timed steps (forward, cross-entropy, backward, gradient
clipping, AdamW) and writes a report in lws's benchmark format
(docs/bench-report.md), so `lws compare` shows lws and PyTorch side by side.

CONFIG is an lws config; it is resolved to its per-layer widths by
`lws bench CONFIG --print-config` (the lws binary: --lws, $LWS_BIN, `lws` on
the PATH, or build/lws), or it may already be a resolved config.

On a CPU: float32, the reference's attention (or scaled_dot_product_attention
where the installed torch has it), OpenBLAS with its SkylakeX kernels on an
AVX-512 CPU. On CUDA: bf16 autocast with float32 master weights and
scaled_dot_product_attention, both eager and torch.compile'd where this torch
has torch.compile (--compile both: REPORT, and REPORT with .compile before
.json).
"""

import argparse
import importlib.util
import math
import os
import platform
import resource
import shutil
import socket
import statistics
import subprocess
import sys
import time
import json

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BENCH_VERSION = 1


class InputError(Exception):
    pass


# ---------------------------------------------------------------------------
# The config


def is_resolved(config):
    lws = config.get("lws") if isinstance(config, dict) else None
    return (
        isinstance(lws, dict)
        and all(isinstance(lws.get(k), list) for k in ("ffn_dims", "q_heads", "kv_heads"))
        and "extends" not in config
    )


def find_lws(given):
    candidates = [given, os.environ.get("LWS_BIN"), shutil.which("lws"),
                  os.path.join(ROOT, "build", "lws")]
    for c in candidates:
        if c and os.access(c, os.X_OK):
            return c
    raise InputError(
        "no lws binary to resolve the config with: pass --lws PATH, set LWS_BIN, or give a "
        "resolved config (`lws bench CONFIG --print-config > resolved.json`)"
    )


def resolve_config(path, lws_bin, micro_batch, seq_len):
    try:
        with open(path) as f:
            config = json.load(f)
    except OSError as e:
        raise InputError(f"{path}: cannot read it ({e.strerror})")
    except ValueError as e:
        raise InputError(f"{path}: not JSON ({e})")
    if not is_resolved(config):
        binary = find_lws(lws_bin)
        run = subprocess.run([binary, "bench", path, "--print-config"], capture_output=True,
                             text=True)
        if run.returncode != 0 and "unknown command 'bench'" in run.stderr:
            raise InputError(f"{binary} is an lws without `bench`: build this tree's lws and pass "
                             "it with --lws or LWS_BIN")
        if run.returncode != 0:
            raise InputError(f"{binary} bench {path} --print-config failed: {run.stderr.strip()}")
        config = json.loads(run.stdout)
    train = config.setdefault("train", {})
    if micro_batch:
        train["micro_batch"] = micro_batch
    if seq_len:
        train["seq_len"] = seq_len
    for key in ("micro_batch", "seq_len"):
        if not isinstance(train.get(key), int) or train[key] < 1:
            raise InputError(f"{path}: train.{key} is missing: give --micro-batch and --seq-len")
    config.setdefault("name", os.path.splitext(os.path.basename(path))[0])
    return config


def matmul_params(cfg):
    """Every projection and the output head: the weights that take part in a matmul."""
    d, hd = cfg.d_model, cfg.head_dim
    total = cfg.vocab_size * d
    for q, kv, f in zip(cfg.q_heads, cfg.kv_heads, cfg.ffn_dims):
        total += 2 * d * (q * hd + kv * hd) + 3 * d * f
    return total


def train_flops_per_token(cfg, seq_len):
    """6 x matmul weights + 12 x seq_len x sum of q widths (lws schedule's count)."""
    return 6.0 * matmul_params(cfg) + 12.0 * seq_len * sum(q * cfg.head_dim for q in cfg.q_heads)


# ---------------------------------------------------------------------------
# The machine


def cpu_info():
    name, vendor = platform.processor() or platform.machine(), "unknown"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                key, _, value = line.partition(":")
                key, value = key.strip(), value.strip()
                if key == "model name" and name in (platform.processor(), platform.machine()):
                    name = value
                elif key == "vendor_id" and vendor == "unknown":
                    vendor = {"AuthenticAMD": "AMD", "GenuineIntel": "Intel"}.get(value, value)
    except OSError:
        pass
    return name, vendor


def host_record():
    uname = os.uname()
    return {
        "hostname": socket.gethostname(),
        "os": f"{uname.sysname} {uname.release}",
        "cpu": cpu_info()[0],
        "logical_cpus": os.cpu_count() or 1,
        "load_average": [round(x, 2) for x in os.getloadavg()],
    }


def host_memory_bytes():
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemTotal:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def nvidia_driver():
    try:
        run = subprocess.run(["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
                             capture_output=True, text=True, timeout=20)
        return run.stdout.strip().splitlines()[0] if run.returncode == 0 else None
    except (OSError, IndexError, subprocess.SubprocessError):
        return None


def device_record(torch, device):
    if device == "cuda":
        props = torch.cuda.get_device_properties(0)
        hip = getattr(torch.version, "hip", None)
        api = f"HIP {hip}" if hip else f"CUDA {torch.version.cuda}"
        driver = nvidia_driver()
        return {
            "name": props.name,
            "vendor": "AMD" if hip else "NVIDIA",
            "type": "discrete GPU",
            "driver": f"{api}, driver {driver}" if driver else api,
            "api_version": api,
            "subgroup_size": 64 if hip else 32,
            "memory_bytes": props.total_memory,
        }
    name, vendor = cpu_info()
    return {
        "name": name,
        "vendor": vendor,
        "type": "CPU",
        "driver": "host CPU, no driver",
        "api_version": "none",
        "subgroup_size": None,
        "memory_bytes": host_memory_bytes(),
    }


def configure_openblas(coretype):
    if coretype == "auto":
        try:
            with open("/proc/cpuinfo") as f:
                avx512 = any(line.startswith("flags") and " avx512f" in line for line in f)
        except OSError:
            avx512 = False
        coretype = "SkylakeX" if avx512 else "keep"
    if coretype != "keep":
        os.environ["OPENBLAS_CORETYPE"] = coretype


def blas_record():
    """The OpenBLAS torch loaded, read back from the library itself."""
    import ctypes

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
        return None
    lib = ctypes.CDLL(path)
    record = {"library": path}
    fn = getattr(lib, "openblas_get_corename", None)
    if fn is not None:
        fn.restype = ctypes.c_char_p
        record["corename"] = fn().decode()
    return record


# ---------------------------------------------------------------------------
# The model, with the fast paths of the installed torch


def load_reference():
    path = os.path.join(ROOT, "tests", "torch_reference.py")
    spec = importlib.util.spec_from_file_location("lws_torch_reference", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def patch_reference(ref, torch, device, attention):
    """RoPE tables built once on the device (the reference rebuilds them on the
    host every call), and scaled_dot_product_attention when asked."""
    F = torch.nn.functional
    model_code = ref.lws_torch  # the module whose functions the model's forward calls
    original = model_code.rope_tables
    cache = {}

    def rope_tables(seq_len, head_dim, theta, dtype):
        key = (seq_len, head_dim, float(theta), dtype)
        if key not in cache:
            cos, sin = original(seq_len, head_dim, theta, dtype)
            cache[key] = (cos.to(device), sin.to(device))
        return cache[key]

    model_code.rope_tables = rope_tables
    if attention == "sdpa":

        def sdpa(q, k, v):
            # Under autocast v comes from a bf16 projection while the QK-norm
            # and RoPE leave q and k in float32: one dtype, as autocast would.
            q, k = q.to(v.dtype), k.to(v.dtype)
            group = q.shape[1] // k.shape[1]
            if group > 1:  # query head h reads KV head h // group
                k = k.repeat_interleave(group, dim=1)
                v = v.repeat_interleave(group, dim=1)
            return F.scaled_dot_product_attention(q, k, v, is_causal=True)

        model_code.causal_gqa_attention = sdpa


def measure_peak(torch, device, dtype):
    """The fastest of a few large square matmuls in the report's precision, TFLOP/s."""
    n = 8192 if device == "cuda" else 2048
    a = torch.full((n, n), 0.01, device=device, dtype=dtype)
    b = torch.full((n, n), 0.01, device=device, dtype=dtype)
    best = 0.0
    for i in range(6 if device == "cuda" else 3):
        if device == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        torch.mm(a, b)
        if device == "cuda":
            torch.cuda.synchronize()
        seconds = time.perf_counter() - start
        if i > 0 or device != "cuda":  # the first CUDA call pays for the library's setup
            best = max(best, 2.0 * n**3 / seconds / 1e12)
    name = {torch.float32: "fp32", torch.bfloat16: "bf16"}[dtype]
    return best, f"torch.mm {name} {n}^3 on {device}, the fastest of a few"


def run_mode(ref, torch, config, args, device, precision, compiled):
    """Warm-up and timed steps of one setup; returns the report dict."""
    F = torch.nn.functional
    cfg, train = ref.ModelConfig(config), ref.TrainConfig(config)
    B, T = config["train"]["micro_batch"], config["train"]["seq_len"]
    A = args.grad_accum
    seed = int(config["train"].get("seed", 42))
    torch.manual_seed(seed)
    model = ref.build_model(config, dtype=torch.float32).to(device)
    optimizer = ref.make_optimizer(model, train)
    forward = torch.compile(model) if compiled else model
    params = list(model.parameters())
    bf16 = precision == "bf16-autocast"
    generator = torch.Generator().manual_seed(seed ^ 0xBE7C4BE7C4)
    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
    if device == "cuda":
        torch.cuda.reset_peak_memory_stats()

    def step(number):
        optimizer.zero_grad(set_to_none=True)
        total = 0.0
        for _ in range(A):
            tokens = torch.randint(0, cfg.vocab_size, (2, B, T), generator=generator).to(device)
            with torch.autocast(device_type=device, dtype=torch.bfloat16, enabled=bf16):
                logits = forward(tokens[0])
            logits = logits.float().view(-1, cfg.vocab_size)
            loss = F.cross_entropy(logits, tokens[1].reshape(-1))
            if train.z_loss > 0:
                loss = loss + train.z_loss * torch.logsumexp(logits, dim=-1).pow(2).mean()
            (loss / A).backward()
            total += loss.item() / A  # read back each micro-batch, as lws does
        if train.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(params, train.grad_clip)
        lr = ref.learning_rate(train, number)
        for group in optimizer.param_groups:
            group["lr"] = lr
        optimizer.step()
        sync()
        return total

    times, losses = [], []
    mode = "compile" if compiled else "eager"
    for i in range(args.warmup + args.steps):
        start = time.perf_counter()
        loss = step(i + 1)
        ms = (time.perf_counter() - start) * 1e3
        losses.append(loss)
        timed = i >= args.warmup
        n, of = (i - args.warmup + 1, args.steps) if timed else (i + 1, args.warmup)
        print(f"{mode} {'timed' if timed else 'warm-up'} step {n}/{of}: {ms:.2f} ms, "
              f"loss {loss:.4f}", flush=True)
        if timed:
            times.append(ms)

    peak_dtype = torch.bfloat16 if bf16 else torch.float32
    peak, peak_how = measure_peak(torch, device, peak_dtype)
    tokens_per_step = B * T * A
    median = statistics.median(times)
    tok_s = tokens_per_step / (median * 1e-3)
    flops = train_flops_per_token(cfg, T)
    if device == "cuda":
        memory = {"peak_bytes": torch.cuda.max_memory_allocated(), "kind": "CUDA allocator",
                  "reserved_bytes": torch.cuda.max_memory_reserved()}
    else:
        memory = {"peak_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
                  "kind": "host RSS", "reserved_bytes": None}
    version = torch.__version__.split("+")[0]
    short = ".".join(version.split(".")[:2])
    label = args.label or f"PyTorch {short} {precision.replace('-autocast', '')} {mode}"
    options = {"attention": args.attention, "compile": compiled,
               "threads": torch.get_num_threads()}
    if device == "cpu":
        options["blas"] = blas_record()
    report = {
        "lws_bench_version": BENCH_VERSION,
        "kind": "train",
        "label": label,
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "engine": {"name": "pytorch", "version": torch.__version__, "precision": precision,
                   "options": options},
        "host": host_record(),
        "device": device_record(torch, device),
        "config": {
            "name": config.get("name", ""),
            "path": args.config,
            "n_layers": cfg.n_layers,
            "d_model": cfg.d_model,
            "head_dim": cfg.head_dim,
            "vocab_size": cfg.vocab_size,
            "block": cfg.block,
            "params": sum(p.numel() for p in params),
            "q_heads": cfg.q_heads,
            "kv_heads": cfg.kv_heads,
            "ffn_dims": cfg.ffn_dims,
            "train_flops_per_token": flops,
        },
        "shape": {"micro_batch": B, "seq_len": T, "grad_accum": A,
                  "tokens_per_step": tokens_per_step},
        "steps": {"warmup": args.warmup, "timed": args.steps},
        "throughput": {
            "tokens_per_s": tok_s,
            "step_ms": {"median": median, "min": min(times), "max": max(times),
                        "mean": statistics.fmean(times),
                        "stdev": statistics.stdev(times) if len(times) > 1 else 0.0,
                        "all": times},
            "device_ms": None,
            "host_waits_per_step": None,
        },
        "peak": {"measured_tflops": peak, "measured_with": peak_how,
                 "datasheet_tflops": args.peak_tflops},
        "mfu": {"measured": tok_s * flops / (peak * 1e12) if peak > 0 else None,
                "datasheet": tok_s * flops / (args.peak_tflops * 1e12) if args.peak_tflops else None},
        "layers": None,
        "stages": None,
        "ops": None,
        "memory": memory,
        "loss": {"first": losses[0], "last": losses[-1]},
    }
    print(f"{label}: {tok_s:.1f} tokens/s; step {median:.2f} ms median (min {min(times):.2f}, "
          f"max {max(times):.2f}); MFU {100 * report['mfu']['measured']:.2f}% of {peak:.4g} "
          f"TFLOP/s ({peak_how}); peak memory {memory['peak_bytes'] / 2**20:.1f} MiB "
          f"({memory['kind']})", flush=True)
    del forward, model, optimizer
    if device == "cuda":
        torch.cuda.empty_cache()
    return report


def report_path(path, compiled, both):
    if not path or not (compiled and both):
        return path
    stem, ext = os.path.splitext(path)
    return f"{stem}.compile{ext or '.json'}"


def main(argv):
    parser = argparse.ArgumentParser(
        description="PyTorch training throughput for an lws config, as an lws benchmark report")
    parser.add_argument("config", help="an lws config (or a resolved one)")
    parser.add_argument("--json", help="write the report here (with --compile both, the "
                                       "compiled run's goes to NAME.compile.json)")
    parser.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    parser.add_argument("--precision", default="auto", choices=("auto", "fp32", "bf16"),
                        help="auto: fp32 on a CPU, bf16 autocast on CUDA")
    parser.add_argument("--attention", default="auto", choices=("auto", "reference", "sdpa"),
                        help="auto: scaled_dot_product_attention where torch has it")
    parser.add_argument("--compile", default="auto", choices=("auto", "off", "on", "both"),
                        help="auto: both on CUDA where torch.compile exists, else off")
    parser.add_argument("--micro-batch", type=int, help="instead of train.micro_batch")
    parser.add_argument("--seq-len", type=int, help="instead of train.seq_len")
    parser.add_argument("--grad-accum", type=int, default=1)
    parser.add_argument("--steps", type=int, default=10, help="timed steps (default 10)")
    parser.add_argument("--warmup", type=int, default=2, help="untimed steps first (default 2)")
    parser.add_argument("--threads", type=int,
                        help="torch's CPU threads (default: torch's own choice, which it "
                             "reports)")
    parser.add_argument("--openblas-coretype", default="auto",
                        help="auto: SkylakeX on an AVX-512 CPU; keep: the environment's")
    parser.add_argument("--peak-tflops", type=float, help="a datasheet peak for a second MFU")
    parser.add_argument("--label", help="the report's label")
    parser.add_argument("--lws", help="the lws binary that resolves CONFIG")
    args = parser.parse_args(argv)
    for name in ("steps", "grad_accum", "threads"):
        if getattr(args, name) is not None and getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1")
    if args.warmup < 0:
        parser.error("--warmup must be at least 0")

    try:
        config = resolve_config(args.config, args.lws, args.micro_batch, args.seq_len)
    except InputError as e:
        print(f"torch_reference: {e}", file=sys.stderr)
        return 1
    configure_openblas(args.openblas_coretype)

    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    device = args.device
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        print("torch_reference: --device cuda but torch sees no CUDA device", file=sys.stderr)
        return 1
    precision = args.precision
    if precision == "auto":
        precision = "bf16" if device == "cuda" else "fp32"
    precision = "bf16-autocast" if precision == "bf16" else "fp32"
    has_sdpa = hasattr(torch.nn.functional, "scaled_dot_product_attention")
    if args.attention == "auto":
        args.attention = "sdpa" if has_sdpa else "reference"
    if args.attention == "sdpa" and not has_sdpa:
        print(f"torch_reference: torch {torch.__version__} has no scaled_dot_product_attention; "
              "use --attention reference", file=sys.stderr)
        return 1
    has_compile = hasattr(torch, "compile")
    compile_mode = args.compile
    if compile_mode == "auto":
        compile_mode = "both" if device == "cuda" and has_compile else "off"
    if compile_mode in ("on", "both") and not has_compile:
        print(f"torch_reference: torch {torch.__version__} has no torch.compile; "
              "use --compile off", file=sys.stderr)
        return 1
    if device == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = False  # fp32 means fp32, as in lws
        torch.backends.cudnn.allow_tf32 = False

    ref = load_reference()
    patch_reference(ref, torch, device, args.attention)
    blas = blas_record() if device == "cpu" else None
    print(f"PyTorch {torch.__version__} on {device}: {config.get('name')} at micro-batch "
          f"{config['train']['micro_batch']} x {config['train']['seq_len']}, {precision}, "
          f"attention {args.attention}, compile {compile_mode}, {torch.get_num_threads()} threads"
          + (f", OpenBLAS {blas.get('corename')} ({blas['library']})" if blas else ""),
          flush=True)
    modes = {"off": [False], "on": [True], "both": [False, True]}[compile_mode]
    for compiled in modes:
        try:
            report = run_mode(ref, torch, config, args, device, precision, compiled)
        except (ref.InputError, InputError) as e:
            print(f"torch_reference: {e}", file=sys.stderr)
            return 1
        path = report_path(args.json, compiled, compile_mode == "both")
        if path:
            with open(path, "w") as f:
                json.dump(report, f, indent=1)
            print(f"report: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
