#!/usr/bin/env bash
# Data-parallel scaling on one machine: `lws bench` as 1 rank and as 2 ranks
# under mpirun, each rank on its own single-threaded lavapipe device
# (LP_NUM_THREADS=1), so that 2 ranks use 2 cores where 1 rank uses one. Each
# rank trains the same micro-batch shape, so 2 ranks process twice the tokens
# per step; the scaling is total tokens/s of 2 ranks over 1 rank's.
#   bash bench/mpi-scaling.sh build/lws [CONFIG] [STEPS] [--set PATH=VALUE]...
# Prints one line per run and the scaling; the reports go to $OUT_DIR
# (default /tmp/lws-mpi-scaling).
set -euo pipefail
lws="${1:?usage: bench/mpi-scaling.sh LWS [CONFIG] [STEPS]}"
config="${2:-configs/tiny/crown.json}"
steps="${3:-8}"
shift $(($# < 3 ? $# : 3))
out="${OUT_DIR:-/tmp/lws-mpi-scaling}"
mkdir -p "$out"
export LP_NUM_THREADS=1 OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
py=/usr/bin/python3

"$lws" bench "$config" --steps "$steps" --no-op-profile "$@" --json "$out/ranks1.json" >"$out/ranks1.log"
mpirun --oversubscribe -np 2 --bind-to none "$lws" bench "$config" --steps "$steps" \
    --no-op-profile "$@" --json "$out/ranks2.json" >"$out/ranks2.log"

"$py" - "$out/ranks1.json" "$out/ranks2.json" <<'EOF'
import json, sys
one, two = (json.load(open(p)) for p in sys.argv[1:3])
d = two["distributed"]
t1 = one["throughput"]["tokens_per_s"]
t2 = d["tokens_per_s_total"]
print(f"1 rank : {t1:8.0f} tokens/s")
per_rank = " + ".join(f"{t:.0f}" for t in d["tokens_per_s_per_rank"])
print(f"2 ranks: {t2:8.0f} tokens/s ({per_rank}); {d['buckets']} reductions per step, "
      f"{d['reduce_ms']:.1f} ms in flight, {d['exposed_ms']:.1f} ms exposed, hidden "
      f"{d['hidden_fraction'] if d['hidden_fraction'] is None else round(d['hidden_fraction'], 2)}, "
      f"host copies {d['host_copy_ms']:.1f} ms")
print(f"scaling: {t2 / t1:.2f}x on 2 ranks (ideal 2.00x)")
EOF
