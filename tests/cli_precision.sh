#!/usr/bin/env bash
# train.precision end to end on a small corpus: a bf16 run's loss falls, its
# checkpoint evaluates to the trainer's own validation loss exactly and
# samples; an fp16 run starts at a loss scale its gradients overflow, skips
# those updates (logged) and halves the scale until they fit, and resuming it from a checkpoint reproduces the uninterrupted run
# bit for bit, loss scale included; the dry run shows each precision's plan;
# bad loss scales are refused.
source tests/lib.sh cli-precision "$1"

cat /usr/share/common-licenses/* >"$dir/corpus.txt"
"$lws" prepare --tokenizer bytes "$dir/corpus.txt" -o "$dir/data" --val-fraction 0.05 >"$dir/prepare.log" 2>&1
check "prepare writes train and val token files" '[ -s "$dir/data/train.tok" ] && [ -s "$dir/data/val.tok" ]'

small() { # small NAME PRECISION STEPS
    cat >"$dir/$1.json" <<JSON
{"extends": "$root/configs/tiny/crown.json",
 "train": {"seq_len": 32, "micro_batch": 4, "grad_accum": 2, "steps": $3, "warmup_steps": 3,
           "lr": 5e-3, "log_every": 1, "checkpoint_every": 4, "keep_checkpoints": 3,
           "precision": "$2", "out_dir": "$dir/run-$1"},
 "data": {"train": "$dir/data/train.tok", "val": "$dir/data/val.tok"},
 "eval": {"every": 10, "tokens": 2048}}
JSON
}
field() { # field RUN STEP KEY: KEY of that step's line in log.jsonl
    grep "\"step\":$2," "$dir/run-$1/log.jsonl" | grep '"loss"' |
        $py -c "import json, sys; print(repr(json.load(sys.stdin).get('$3')))"
}

# 1. bf16: the loss falls; lws eval of the checkpoint is the trainer's
# validation (one evaluation, in the run's own precision); sampling works.
small bf16 bf16 20
"$lws" train "$dir/bf16.json" --peak-tflops 1 >"$dir/bf16.log" 2>&1
check "bf16 run exits 0" '[ $? -eq 0 ]'
first=$(field bf16 1 loss); last=$(field bf16 20 loss)
check "bf16 loss falls: step 1 $first -> step 20 $last" "awk 'BEGIN{exit !($last < $first - 0.5)}'"
check "bf16 logs no loss scale" '! grep -q loss_scale "$dir/run-bf16/log.jsonl"'
val=$(grep '"val_loss"' "$dir/run-bf16/log.jsonl" | tail -1 | $py -c 'import json, sys; print(repr(json.load(sys.stdin)["val_loss"]))')
got=$("$lws" eval "$dir/run-bf16" --data "$dir/data/val.tok" --tokens 2048 --json | $py -c 'import json, sys; print(repr(json.load(sys.stdin)["loss"]))')
check "bf16: lws eval $got == the trainer's validation $val" '[ -n "$got" ] && [ "$got" = "$val" ]'
out=$("$lws" sample "$dir/run-bf16" --prompt "the " --tokens 40 --temperature 0 2>&1); rc=$?
check "bf16 checkpoint samples text" '[ $rc -eq 0 ] && [ ${#out} -ge 40 ]'

# 2. fp16 from the default loss scale, 65536, which this model's gradients
# overflow at the start: the first updates are skipped (grad_norm null, the
# scale halved each time), then the scale holds and the loss falls.
small fp16 fp16 12
"$lws" train "$dir/fp16.json" --peak-tflops 1 >"$dir/fp16.log" 2>&1
check "fp16 run exits 0" '[ $? -eq 0 ]'
check "fp16 step 1 skipped at scale 65536, halved" '[ "$(field fp16 1 skipped)" = True ] && [ "$(field fp16 1 loss_scale)" = 32768 ] && [ "$(field fp16 1 grad_norm)" = None ]'
check "the progress line shows the loss scale and the skip" 'grep -q "loss scale 32768 (gradients overflowed: update skipped, scale halved)" "$dir/fp16.log"'
held=$(field fp16 12 loss_scale)
check "the scale settles ($held) and the last updates ran" '[ "$(field fp16 12 skipped)" = False ] && [ "$(field fp16 11 skipped)" = False ] && [ "$(field fp16 11 loss_scale)" = "$held" ]'
first=$(field fp16 1 loss); last=$(field fp16 12 loss)
check "fp16 loss falls: step 1 $first -> step 12 $last" "awk 'BEGIN{exit !($last < $first - 0.3)}'"
check "the checkpoint state holds the loss scale" 'grep -q "\"loss_scale\"" "$dir/run-fp16/checkpoints/step-00000012/state.json"'

# 3. Resume: the fp16 run from its step-4 checkpoint in a fresh directory
# repeats steps 5-12 bit for bit, loss scales and skips included.
cp -r "$dir/run-fp16/checkpoints/step-00000004" "$dir/step4"
"$lws" train "$dir/fp16.json" --peak-tflops 1 --quiet --resume "$dir/step4" --out "$dir/run-resumed" >"$dir/resumed.log" 2>&1
check "resumed fp16 run finishes" '[ $? -eq 0 ]'
same=1
for s in 5 6 7 8 9 10 11 12; do
    for key in loss loss_scale skipped; do
        a=$(field fp16 $s $key); b=$(field resumed $s $key)
        [ "$a" != None ] && [ "$a" = "$b" ] || { same=0; echo "  step $s $key: straight $a, resumed $b"; }
    done
done
check "resumed fp16 losses, loss scales and skips are those of the uninterrupted run" '[ $same -eq 1 ]'

# 4. The dry run: each precision's plan; bf16 halves the activations.
act() { "$lws" train "$dir/bf16.json" --set train.precision=$1 --dry-run 2>&1 | awk '/^  activations/ {print $2}'; }
a32=$(act fp32); a16=$(act bf16)
check "dry run: activations fp32 $a32 MiB, bf16 $a16 MiB (about half)" "awk 'BEGIN{exit !($a16 < 0.6 * $a32 && $a16 > 0.4 * $a32)}'"
check "dry run names the precision" '"$lws" train "$dir/bf16.json" --set train.precision=fp16 --dry-run 2>&1 | grep -q "precision fp16"'

# 5. Refusals.
msg=$("$lws" train "$dir/bf16.json" --set train.precision=fp16 --set train.loss_scale=1000 2>&1); rc=$?
check "a loss scale that is not a power of two is refused" '[ $rc -ne 0 ] && [[ "$msg" == *"train.loss_scale"* && "$msg" == *"power of two"* ]]'
msg=$("$lws" train "$dir/bf16.json" --set train.loss_scale=1024 2>&1); rc=$?
check "a loss scale outside fp16 is refused" '[ $rc -ne 0 ] && [[ "$msg" == *"train.loss_scale"* && "$msg" == *"bf16"* ]]'
msg=$("$lws" train "$dir/bf16.json" --set train.precision=fp8 2>&1); rc=$?
check "an unknown precision is refused naming the allowed ones" '[ $rc -ne 0 ] && [[ "$msg" == *"fp8"* && "$msg" == *"\"bf16\""* ]]'
finish
