#!/usr/bin/env bash
# One vendor's kernel table (LWS_TUNING) end to end on this machine's device:
# parity with PyTorch for the crown variant in fp32 and bf16 (the kernel
# tests run every element type under each table), and a 5-step training run of
# configs/tiny/crown.json on a small corpus, with the hazard checker on.
# The GPU tables split weight gradients with few tiles over k (ops/matmul_split.c)
# when each slice gets at least 256 tokens; LWS_MATMUL_SPLIT_K=4x16 lets these
# runs' few dozen tokens split too (set LWS_MATMUL_SPLIT_K to override).
#   bash scripts/tuning-check.sh build/lws nvidia
set -uo pipefail
lws="$1"
tuning="$2"
root="$(cd "$(dirname "$0")/.." && pwd)"
dir="${LWS_TEST_DIR:-/tmp/lws-tuning-check}/$tuning"
rm -rf "$dir"; mkdir -p "$dir"
export LWS_TUNING="$tuning" LWS_CHECK_HAZARDS=1 LWS_MATMUL_SPLIT_K="${LWS_MATMUL_SPLIT_K-4x16}"
fail=0

# One step's recording under the checker: no unneeded barrier, and where the
# table splits (all but lavapipe's), the weight gradients' sums of slices
# recorded beside the rest.
if "$lws" bench "$root/configs/tiny/crown.json" --steps 1 --warmup 0 --no-op-profile --seq-len 24 \
    --micro-batch 2 >"$dir/bench.log" 2>&1 &&
    grep -q ', 0 of them unneeded' "$dir/bench.log"; then
    echo "ok   LWS_TUNING=$tuning: one step recorded with no unneeded barrier" \
        "($(grep -o 'per training micro-batch: [0-9]* dispatches' "$dir/bench.log"))"
else
    echo "FAIL LWS_TUNING=$tuning: one step under the hazard checker"; cat "$dir/bench.log"; fail=1
fi

LWS_PARITY_VARIANTS=crown LWS_PARITY_PRECISIONS="fp32 bf16" LWS_TEST_DIR="$dir/parity" bash "$root/tests/cli_parity.sh" "$lws" ||
    fail=1

# The licence texts every Debian system has (about 0.5 MB), as bytes.
cat /usr/share/common-licenses/* >"$dir/corpus.txt"
"$lws" prepare --tokenizer bytes "$dir/corpus.txt" -o "$dir/data" --val-fraction 0.05 \
    >"$dir/prepare.log" 2>&1 || { cat "$dir/prepare.log"; fail=1; }
cat >"$dir/crown.json" <<JSON
{"extends": "$root/configs/tiny/crown.json",
 "train": {"seq_len": 32, "micro_batch": 4, "grad_accum": 2, "steps": 5, "warmup_steps": 2,
           "lr": 5e-3, "log_every": 1, "out_dir": "$dir/run"},
 "data": {"train": "$dir/data/train.tok", "val": "$dir/data/val.tok"}}
JSON
if "$lws" train "$dir/crown.json" --peak-tflops 1 >"$dir/train.log" 2>&1 &&
    [ "$(grep -c '"loss"' "$dir/run/log.jsonl")" -ge 5 ] &&
    ! grep -q '"loss":\(nan\|inf\|-inf\)' "$dir/run/log.jsonl"; then
    echo "ok   LWS_TUNING=$tuning: 5 training steps of tiny crown"
else
    echo "FAIL LWS_TUNING=$tuning: 5 training steps of tiny crown"; cat "$dir/train.log"; fail=1
fi
exit $fail
