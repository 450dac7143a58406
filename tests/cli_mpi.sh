#!/usr/bin/env bash
# Data-parallel training under mpirun on lavapipe: 2 ranks of grad_accum 1
# against 1 rank of grad_accum 2 (the same global batch), a 2-rank run
# resumed on 2 ranks and on 1, ZeRO-1 against the unsharded run, bf16 and
# fp16 (loss scaling: every rank skips the same steps) on 2 ranks against 1,
# a rank killed and a rank refusing its data (every rank exits, naming it),
# and SIGUSR1 and SIGINT on mpirun saving one checkpoint. Skipped where
# mpirun is missing or lws was built without MPI.
source tests/lib.sh cli-mpi "$1"
if ! command -v mpirun >/dev/null; then echo "SKIP: mpirun is not installed"; exit 77; fi
if ! "$lws" --version | grep -q "built with MPI"; then echo "SKIP: lws built without MPI"; exit 77; fi
# Open MPI refuses root unless told; tests run as root in CI. One lavapipe
# thread per rank, two ranks on the two cores.
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 LP_NUM_THREADS=1
mpi() { timeout 120 mpirun --oversubscribe -np "$@"; }
# whatever a failed check left running in this test's directory ends with it
cleanup() { for p in $(pgrep -f "$dir/"); do kill -9 "$p" 2>/dev/null; done; }
trap cleanup EXIT

cat /usr/share/common-licenses/* >"$dir/corpus.txt"
"$lws" prepare --tokenizer bytes "$dir/corpus.txt" -o "$dir/data" --val-fraction 0.05 >"$dir/prepare.log" 2>&1
config() { # config NAME GRAD_ACCUM STEPS [SHARD] [PRECISION]
    cat >"$dir/$1.json" <<JSON
{"extends": "$root/configs/tiny/crown.json",
 "train": {"seq_len": 32, "micro_batch": 4, "grad_accum": $2, "steps": $3, "warmup_steps": 2,
           "lr": 5e-3, "log_every": 1, "checkpoint_every": 5, "keep_checkpoints": 0,
           "bucket_mb": 0, "shard_optimizer": ${4:-false}, "precision": "${5:-fp32}",
           "out_dir": "$dir/run-$1"},
 "data": {"train": "$dir/data/train.tok", "val": "$dir/data/val.tok"},
 "eval": {"every": 0, "tokens": 1024}}
JSON
}
losses() { grep -o '"loss":[^,]*' "$dir/run-$1/log.jsonl" | cut -d: -f2; }
ckpt() { echo "$dir/run-$1/checkpoints/step-$(printf %08d "$2")/model.safetensors"; }
# close A B TOL: per-step losses and every weight of the last checkpoints
# within TOL (relative for losses, absolute for weights); prints the largest
# differences.
close() {
    "$py" - "$dir" "$1" "$2" "$3" <<'PY'
import array, json, struct, sys
d, a, b, tol = sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4])
def losses(run):
    return [json.loads(l)["loss"] for l in open(f"{d}/run-{run}/log.jsonl") if '"loss"' in l]
def tensors(run):
    blob = open(f"{d}/run-{run}/checkpoints/step-00000010/model.safetensors", "rb").read()
    n = struct.unpack("<Q", blob[:8])[0]
    head = json.loads(blob[8:8 + n]); head.pop("__metadata__", None)
    out = {}
    for k, v in head.items():
        x = array.array("f"); x.frombytes(blob[8 + n + v["data_offsets"][0]:8 + n + v["data_offsets"][1]])
        out[k] = x
    return out
la, lb = losses(a), losses(b)
dl = max(abs(x - y) / abs(x) for x, y in zip(la, lb)) if len(la) == len(lb) == 10 else float("inf")
ta, tb = tensors(a), tensors(b)
dw = max(max(abs(x - y) for x, y in zip(ta[k], tb[k])) for k in ta) if ta.keys() == tb.keys() else float("inf")
print(f"  {a} vs {b}: losses differ by {dl:.3g} (relative), weights by {dw:.3g}")
sys.exit(0 if dl <= tol and dw <= tol else 1)
PY
}

check "lws --version says it was built with MPI" '"$lws" --version | grep -q "built with MPI (Open MPI"'

# 1. The same global batch of 8 sequences: 1 rank x 2 micro-batches, 2 ranks
# x 1. The reduction sums the two halves in another order than the
# accumulation; on lavapipe (no fused multiply-add in the accumulation,
# the 1/2 scaling exact) the runs agree bit for bit, and the check allows 1e-5.
config one 2 10
config two 1 10
"$lws" train "$dir/one.json" --peak-tflops 1 --quiet >"$dir/one.log" 2>&1
check "1 rank, grad_accum 2: 10 steps" '[ $? -eq 0 ]'
mpi 2 "$lws" train "$dir/two.json" --peak-tflops 1 >"$dir/two.log" 2>&1
check "2 ranks, grad_accum 1: 10 steps" '[ $? -eq 0 ]'
check "2 ranks match 1 rank with twice the accumulation (losses, weights within 1e-5)" 'close one two 1e-5'
check "only rank 0 prints and logs: one line per step" '[ $(grep -c "^step 3/10" "$dir/two.log") -eq 1 ] && [ $(grep -c "\"step\":3," "$dir/run-two/log.jsonl") -eq 1 ]'
check "the log has the reduction times" 'grep -q "\"reduce_exposed_ms\"" "$dir/run-two/log.jsonl"'
check "state.json records 2 ranks" 'grep -q "\"world_size\":[[:space:]]*2" "$dir/run-two/checkpoints/step-00000010/state.json"'

# 2. Resume the 2-rank run from step 5: on 2 ranks bit-identical to the
# uninterrupted run; on 1 rank with grad_accum 2 (the same global batch) too.
mpi 2 "$lws" train "$dir/two.json" --quiet --peak-tflops 1 --resume "$(dirname "$(ckpt two 5)")" --out "$dir/run-res2" >"$dir/res2.log" 2>&1
check "2-rank checkpoint resumed on 2 ranks" '[ $? -eq 0 ]'
check "... reproduces the uninterrupted run (losses of steps 6-10, weights)" '[ "$(losses two | tail -5)" = "$(losses res2)" ] && same_tensors "$(ckpt two 10)" "$(ckpt res2 10)"'
"$lws" train "$dir/one.json" --quiet --peak-tflops 1 --resume "$(dirname "$(ckpt two 5)")" --out "$dir/run-res1" >"$dir/res1.log" 2>&1
check "2-rank checkpoint resumed on 1 rank with grad_accum 2, said so" '[ $? -eq 0 ] && grep -q "written by 2 ranks" "$dir/res1.log"'
check "... continues the same run" '[ "$(losses two | tail -5)" = "$(losses res1)" ] && same_tensors "$(ckpt two 10)" "$(ckpt res1 10)"'

# 3. ZeRO-1: each rank keeps half the moments; the run equals the unsharded
# one up to the global norm, summed from the two halves in another order.
config zero 1 10 true
mpi 2 "$lws" train "$dir/zero.json" --peak-tflops 1 >"$dir/zero.log" 2>&1
check "ZeRO-1 on 2 ranks: 10 steps" '[ $? -eq 0 ]'
check "ZeRO-1 equals the unsharded run (losses, weights within 1e-5)" 'close two zero 1e-5'
opt_two=$(grep -A3 "memory plan" "$dir/two.log" | grep optimizer | awk '{print $2}')
opt_zero=$(grep -A3 "memory plan" "$dir/zero.log" | grep optimizer | awk '{print $2}')
check "the memory plan shows the optimizer state halved ($opt_two -> $opt_zero MiB)" "awk 'BEGIN{r=$opt_zero/$opt_two; exit !(r > 0.45 && r < 0.55)}'"
check "a sharded checkpoint holds all the moments" '"$py" -c "import json,struct,sys; b=open(sys.argv[1],\"rb\").read(); h=json.loads(b[8:8+struct.unpack(\"<Q\",b[:8])[0]]); sys.exit(0 if sum(k.endswith(\".exp_avg\") for k in h)>10 else 1)" "$dir/run-zero/checkpoints/step-00000010/optimizer.safetensors"'

# lws bench under mpirun: the report's distributed section has both ranks'
# throughput and the reductions' times.
mpi 2 "$lws" bench "$dir/two.json" --steps 2 --warmup 1 --no-op-profile --peak-tflops 1 --json "$dir/bench2.json" >"$dir/bench2.log" 2>&1
check "lws bench on 2 ranks reports per-rank tokens/s, reduction time and the hidden fraction" '"$py" -c "
import json, sys
d = json.load(open(sys.argv[1]))[\"distributed\"]
r = d[\"tokens_per_s_per_rank\"]
ok = d[\"ranks\"] == 2 and len(r) == 2 and min(r) > 0 and abs(sum(r) - d[\"tokens_per_s_total\"]) < 1e-6 * sum(r)
ok = ok and d[\"buckets\"] >= 1 and d[\"reduce_ms\"] > 0 and 0 <= d[\"exposed_ms\"]
h = d[\"hidden_fraction\"]
sys.exit(0 if ok and (h is None or h <= 1) else 1)" "$dir/bench2.json"'

# 4. Mixed precision. bf16: 2 ranks' 16-bit gradients of the logits are
# twice one rank's (grad_accum 1 against 2), exact in bf16's range, so the
# runs agree as in fp32 (1e-5). fp16 from the default loss scale: this
# model's gradients overflow it, so steps 1-4 are skipped and the scale is
# halved down to 4096; steps 5-7 update. 2 ranks with ZeRO-1 skip the same
# steps at the same scales as 1 rank, and their losses agree within 1e-4
# (relative; fp16 rounds the logits' gradients near its subnormals
# differently at the two scalings, and AdamW turns such differences of
# near-zero gradients into weight differences of up to lr, so the weights
# are not compared). A resume on 2 ranks from step 5 takes the loss scale
# from the checkpoint and reproduces the run.
config one-bf16 2 10 false bf16
config two-bf16 1 10 false bf16
"$lws" train "$dir/one-bf16.json" --quiet --peak-tflops 1 >"$dir/one-bf16.log" 2>&1
mpi 2 "$lws" train "$dir/two-bf16.json" --quiet --peak-tflops 1 >"$dir/two-bf16.log" 2>&1
check "bf16: 2 ranks match 1 rank with twice the accumulation (losses, weights within 1e-5)" 'close one-bf16 two-bf16 1e-5'
config one-fp16 2 7 false fp16
config zero-fp16 1 7 true fp16
"$lws" train "$dir/one-fp16.json" --quiet --peak-tflops 1 >"$dir/one-fp16.log" 2>&1
mpi 2 "$lws" train "$dir/zero-fp16.json" --quiet --peak-tflops 1 >"$dir/zero-fp16.log" 2>&1
rc=$?
scales() { "$py" -c 'import json,sys; [print(j["step"], j["loss_scale"], j["skipped"]) for j in map(json.loads, open(sys.argv[1])) if "loss" in j]' "$dir/run-$1/log.jsonl"; }
one_scales=$(scales one-fp16); zero_scales=$(scales zero-fp16)
check "fp16, ZeRO-1 on 2 ranks: the same skipped steps and loss scales as 1 rank ($(grep -c True <<<"$zero_scales") skipped)" '[ $rc -eq 0 ] && [ "$one_scales" = "$zero_scales" ] && grep -q "^1 32768 True" <<<"$one_scales" && grep -q "^7 .* False" <<<"$one_scales"'
check "... losses within 1e-4 of 1 rank's" '"$py" -c "import sys; a, b = ([float(x) for x in open(f)] for f in sys.argv[1:]); sys.exit(0 if len(a) == len(b) == 7 and max(abs(x - y) / x for x, y in zip(a, b)) <= 1e-4 else 1)" <(losses one-fp16) <(losses zero-fp16)'
check "... its checkpoint keeps the ranks and the loss scale" 'grep -q "\"world_size\":[[:space:]]*2" "$(dirname "$(ckpt zero-fp16 7)")/state.json" && grep -q "\"loss_scale\":[[:space:]]*4096" "$(dirname "$(ckpt zero-fp16 7)")/state.json"'
mpi 2 "$lws" train "$dir/zero-fp16.json" --quiet --peak-tflops 1 --resume "$(dirname "$(ckpt zero-fp16 5)")" --out "$dir/run-res-fp16" >"$dir/res-fp16.log" 2>&1
rc=$?
check "... resumed on 2 ranks from step 5: the same losses, scales and weights" '[ $rc -eq 0 ] && [ "$(losses zero-fp16 | tail -2)" = "$(losses res-fp16)" ] && [ "$(scales zero-fp16 | tail -2)" = "$(scales res-fp16)" ] && same_tensors "$(ckpt zero-fp16 7)" "$(ckpt res-fp16 7)"'

# 5. Failures end every rank within seconds, naming the rank.
config long 1 100000
# mpirun itself in the background (its ranks are its children), a watchdog
# against a hang
background() { # background CONFIG LOG [MPIRUN OPTION]...
    local config=$1 log=$2
    shift 2
    mpirun --oversubscribe -np 2 "$@" "$lws" train "$config" --peak-tflops 1 >"$log" 2>&1 &
    pid=$!
    (sleep 100; kill -9 $pid) >/dev/null 2>&1 &
    watchdog=$!
}
background "$dir/long.json" "$dir/kill.log"
for _ in $(seq 1 600); do grep -q "^step 2/" "$dir/kill.log" 2>/dev/null && break; sleep 0.1; done
victim=$(pgrep -P $pid -f "long.json" | tail -1)
kill -9 "$victim"; t0=$(date +%s)
wait $pid; rc=$?; t1=$(date +%s); kill $watchdog
check "a rank killed: mpirun exits non-zero ($rc) within 10 s ($((t1 - t0)) s), naming it" '[ $rc -ne 0 ] && [ $((t1 - t0)) -le 10 ] && grep -q "rank 1 .*exited on signal 9" "$dir/kill.log"'
check "... and no rank is left" '! pgrep -f "$dir/long.json" >/dev/null'
printf 'not a token file' >"$dir/bad.tok"
t0=$(date +%s)
timeout 60 mpirun --oversubscribe -np 1 "$lws" train "$dir/two.json" --overwrite : -np 1 "$lws" train "$dir/two.json" --overwrite --data "$dir/bad.tok" >"$dir/bad.log" 2>&1
rc=$?; t1=$(date +%s)
check "a rank refusing its data: every rank exits non-zero ($rc) in $((t1 - t0)) s, the rank and file named" '[ $rc -ne 0 ] && [ $rc -ne 124 ] && grep -q "rank 1 of 2: .*bad.tok" "$dir/bad.log"'

# 6. SIGUSR1 on mpirun reaches every rank: one checkpoint, by rank 0, then 130.
config stop 1 100000
background "$dir/stop.json" "$dir/stop.log"
for _ in $(seq 1 600); do grep -q "^step 2/" "$dir/stop.log" 2>/dev/null && break; sleep 0.1; done
kill -USR1 $pid; wait $pid; rc=$?; kill $watchdog
check "SIGUSR1 on mpirun: exit 130 with one checkpoint named" '[ $rc -eq 130 ] && [ $(grep -c "continue with --resume" "$dir/stop.log") -eq 1 ] && ls "$dir/run-stop/checkpoints/"step-*/model.safetensors >/dev/null 2>&1'
# SIGINT on mpirun reaches the ranks as SIGTERM after odls_base_sigkill_timeout
# seconds, then SIGKILL as long after: raised here so that a loaded machine
# still finishes the step and the checkpoint in time.
config int 1 100000
background "$dir/int.json" "$dir/int.log" --mca odls_base_sigkill_timeout 10
for _ in $(seq 1 600); do grep -q "^step 2/" "$dir/int.log" 2>/dev/null && break; sleep 0.1; done
kill -INT $pid; wait $pid; rc=$?; kill $watchdog
check "SIGINT on mpirun: non-zero ($rc), rank 0 saved one checkpoint at the step the ranks agreed on" '[ $rc -ne 0 ] && [ $(grep -c "stopped by signal 15 at step" "$dir/int.log") -eq 1 ] && ls "$dir/run-int/checkpoints/"step-*/model.safetensors >/dev/null 2>&1'
finish
