#!/usr/bin/env bash
# lws train end to end on a small corpus: the loss falls, validation runs,
# a resumed run reproduces an uninterrupted one bit for bit, Ctrl-C saves a
# checkpoint, a diverging run stops with the step and the last checkpoint,
# bad data and an oversized plan are refused, and sampling works.
source tests/lib.sh cli-train "$1"

# A corpus every Debian system has: the licence texts (about 0.5 MB).
cat /usr/share/common-licenses/* >"$dir/corpus.txt"
"$lws" prepare --tokenizer bytes "$dir/corpus.txt" -o "$dir/data" --val-fraction 0.05 >"$dir/prepare.log" 2>&1
check "prepare writes train and val token files" '[ -s "$dir/data/train.tok" ] && [ -s "$dir/data/val.tok" ]'

small() { # small NAME STEPS
    cat >"$dir/$1.json" <<JSON
{"extends": "$root/configs/tiny/crown.json",
 "train": {"seq_len": 32, "micro_batch": 4, "grad_accum": 2, "steps": $2, "warmup_steps": 3,
           "lr": 5e-3, "log_every": 1, "checkpoint_every": 4, "keep_checkpoints": 2,
           "out_dir": "$dir/run-$1"},
 "data": {"train": "$dir/data/train.tok", "val": "$dir/data/val.tok"},
 "eval": {"every": 10, "tokens": 2048}}
JSON
}
loss_at() { grep "\"step\":$2," "$dir/run-$1/log.jsonl" | grep '"loss"' | sed 's/.*"loss":\([^,]*\),.*/\1/'; }

# 1. A short run: the loss falls and validation is logged.
small short 30
"$lws" train "$dir/short.json" --peak-tflops 1 >"$dir/short.log" 2>&1
check "short run exits 0" '[ $? -eq 0 ]'
first=$(loss_at short 1); last=$(loss_at short 30)
check "loss falls: step 1 $first -> step 30 $last" "awk 'BEGIN{exit !($last < $first - 1.0)}'"
check "validation loss and bits per byte logged" 'grep -q "\"val_bpb\"" "$dir/run-short/log.jsonl"'
check "progress line has loss, lr, grad norm, tok/s, MFU, ETA" 'grep -q "loss .* lr .* grad norm .* tok/s .* MFU .* ETA" "$dir/short.log"'
check "memory plan printed" 'grep -q "memory plan" "$dir/short.log" && grep -q "activations" "$dir/short.log"'
check "checkpoint written, only the last 2 kept" '[ -f "$dir/run-short/checkpoints/step-00000030/model.safetensors" ] && [ $(ls "$dir/run-short/checkpoints" | wc -l) -eq 2 ]'

# 2. Resume: 8 steps straight vs resuming the same run from its step-4
# checkpoint in a fresh directory: the losses of steps 5-8 and the final
# weights must be bit-identical.
small straight 8
"$lws" train "$dir/straight.json" --peak-tflops 1 --quiet >"$dir/straight.log" 2>&1
cp -r "$dir/run-straight/checkpoints/step-00000004" "$dir/step4"
"$lws" train "$dir/straight.json" --peak-tflops 1 --quiet --resume "$dir/step4" --out "$dir/run-resumed" >"$dir/resumed.log" 2>&1
rc=$?
check "resumed run finishes" '[ $rc -eq 0 ] && grep -q "resumed from" "$dir/resumed.log"'
same=1
for s in 5 6 7 8; do
    a=$(loss_at straight $s); b=$(loss_at resumed $s)
    [ -n "$a" ] && [ "$a" = "$b" ] || { same=0; echo "  step $s: straight $a, resumed $b"; }
done
check "resumed losses are bit-identical to an uninterrupted run (steps 5-8)" '[ $same -eq 1 ]'
check "resumed final weights are bit-identical" 'same_tensors "$dir/run-straight/checkpoints/step-00000008/model.safetensors" "$dir/run-resumed/checkpoints/step-00000008/model.safetensors"'

# 3. Ctrl-C: a checkpoint is saved and the run can continue.
small interrupt 100000
"$lws" train "$dir/interrupt.json" --peak-tflops 1 >"$dir/interrupt.log" 2>&1 &
pid=$!
for _ in $(seq 1 600); do grep -q "^step 2/" "$dir/interrupt.log" 2>/dev/null && break; sleep 0.1; done
kill -INT $pid; wait $pid; rc=$?
check "SIGINT exits 130 with a checkpoint named" '[ $rc -eq 130 ] && grep -q "continue with --resume" "$dir/interrupt.log"'
check "SIGINT checkpoint exists" 'ls "$dir/run-interrupt/checkpoints/"step-*/model.safetensors >/dev/null 2>&1'

# 4. Divergence: an absurd learning rate turns the loss non-finite.
cat >"$dir/diverge.json" <<JSON
{"extends": "$dir/short.json",
 "train": {"steps": 20, "lr": 1e30, "warmup_steps": 0, "grad_clip": 0, "out_dir": "$dir/run-diverge"}}
JSON
"$lws" train "$dir/diverge.json" --peak-tflops 1 >"$dir/diverge.log" 2>&1
rc=$?
check "non-finite loss stops the run naming the step" '[ $rc -ne 0 ] && grep -Eq "step [0-9]+: the (loss|gradient norm) is" "$dir/diverge.log" && grep -q "last good checkpoint" "$dir/diverge.log"'

# 5. Refusals: tokens beyond the vocabulary, a missing file, an oversized plan.
# A NumPy file (no vocabulary in its header) holding token 300 >= 256.
/usr/bin/python3 -c "
import numpy as np; t = np.arange(4096, dtype='<u2') % 256; t[1234] = 300; np.save('$dir/big.npy', t)"
msg=$("$lws" train "$dir/short.json" --data "$dir/big.npy" --peak-tflops 1 2>&1); rc=$?
check "token >= vocab refused naming the file and position" '[ $rc -ne 0 ] && [[ "$msg" == *"big.npy"* && "$msg" == *"1234"* ]]'
msg=$("$lws" train "$dir/short.json" --data "$dir/missing.tok" 2>&1); rc=$?
check "missing data file refused naming it" '[ $rc -ne 0 ] && [[ "$msg" == *"missing.tok"* ]]'
cat >"$dir/huge.json" <<JSON
{"extends": "$dir/short.json", "train": {"micro_batch": 4096, "seq_len": 1024}}
JSON
msg=$("$lws" train "$dir/huge.json" 2>&1); rc=$?
check "a plan larger than the device is refused with the breakdown" '[ $rc -ne 0 ] && [[ "$msg" == *"activations"* && "$msg" == *"GiB of device memory"* ]]'

# 6. Sampling from the short run's checkpoint.
out=$("$lws" sample "$dir/run-short" --prompt "the " --tokens 40 --temperature 0 2>&1); rc=$?
check "sample prints text" '[ $rc -eq 0 ] && [ ${#out} -ge 40 ]'
finish
