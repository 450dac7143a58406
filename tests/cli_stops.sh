#!/usr/bin/env bash
# Runs that stop early lose nothing:
#  - SIGTERM in the middle of a long step (grad_accum 400) and SIGHUP in the
#    middle of a long validation pass stop lws train within seconds, with a
#    checkpoint of the last completed step;
#  - a token file truncated while training stops the run with a message
#    naming it and a checkpoint (a mapped file would end it with SIGBUS);
#  - lws train killed with SIGKILL at random moments (a checkpoint every
#    step) and resumed each time ends with the weights, moments and log of
#    an uninterrupted run.
source tests/lib.sh cli-stops "$1"

cat /usr/share/common-licenses/* >"$dir/corpus.txt"
"$lws" prepare --tokenizer bytes "$dir/corpus.txt" -o "$dir/data" --val-fraction 0.05 >/dev/null 2>&1
cat >"$dir/base.json" <<JSON
{"extends": "$root/configs/tiny/crown.json",
 "train": {"seq_len": 32, "micro_batch": 4, "steps": 24, "warmup_steps": 2, "lr": 3e-3,
           "log_every": 1, "checkpoint_every": 1, "keep_checkpoints": 2},
 "data": {"train": "$dir/data/train.tok", "val": "$dir/data/val.tok"},
 "eval": {"every": 0, "tokens": 256}}
JSON
run=(train "$dir/base.json" --peak-tflops 1)
now() { date +%s.%N; }
# Waits (up to 60 s) for PATTERN in FILE.
wait_for() { for _ in $(seq 1 600); do grep -q "$2" "$1" 2>/dev/null && return 0; sleep 0.1; done; return 1; }

# 1. SIGTERM between micro-batches: step 2 of 400 micro-batches is under way.
"$lws" "${run[@]}" --set train.steps=1 --set train.warmup_steps=0 --out "$dir/term" >/dev/null 2>&1
"$lws" "${run[@]}" --set train.steps=3 --set train.grad_accum=400 --resume "$dir/term" >"$dir/term.log" 2>&1 &
pid=$!
wait_for "$dir/term.log" "resumed from"; sleep 1
t0=$(now); kill -TERM $pid; wait $pid; rc=$?; took=$(echo "$(now) - $t0" | bc)
check "SIGTERM mid-step exits 130 within 5 s (${took} s)" '[ $rc -eq 130 ] && [ "$(echo "$took < 5" | bc)" = 1 ]'
check "... naming signal 15 and the checkpoint of step 1" 'grep -q "stopped by signal 15 at step 1; checkpoint .*step-00000001" "$dir/term.log" && [ -f "$dir/term/checkpoints/step-00000001/model.safetensors" ] && [ ! -d "$dir/term/checkpoints/step-00000002" ]'

# 2. SIGHUP (a dropped SSH session) during a validation pass over 290k tokens.
"$lws" "${run[@]}" --set train.micro_batch=2 --val "$dir/data/train.tok" --set eval.every=1 \
    --set eval.tokens=0 --out "$dir/hup" >"$dir/hup.log" 2>&1 &
pid=$!
wait_for "$dir/hup.log" "^step 1/"; sleep 0.5
t0=$(now); kill -HUP $pid; wait $pid; rc=$?; took=$(echo "$(now) - $t0" | bc)
check "SIGHUP mid-validation exits 130 within 5 s (${took} s)" '[ $rc -eq 130 ] && [ "$(echo "$took < 5" | bc)" = 1 ]'
check "... with the checkpoint of step 1" 'grep -q "stopped by signal 1 at step 1" "$dir/hup.log" && [ -f "$dir/hup/checkpoints/step-00000001/model.safetensors" ]'

# 3. The training file truncated under a running lws train.
cp "$dir/data/train.tok" "$dir/trunc.tok"
"$lws" "${run[@]}" --set train.steps=100000 --set train.checkpoint_every=0 --data "$dir/trunc.tok" \
    --out "$dir/trunc" >"$dir/trunc.log" 2>&1 &
pid=$!
wait_for "$dir/trunc.log" "^step 3/"
truncate -s 1000 "$dir/trunc.tok"
wait $pid; rc=$?
last=$(grep -c '"loss"' "$dir/trunc/log.jsonl")
check "a truncated token file stops the run (exit $rc, not SIGBUS)" '[ $rc -eq 1 ] && grep -q "trunc.tok: changed while in use" "$dir/trunc.log"'
check "... saving step $last, the last completed" 'grep -q "saved now" "$dir/trunc.log" && [ -f "$dir/trunc/checkpoints/step-$(printf %08d $last)/state.json" ]'

# 4. SIGKILL at random moments, a resume after each, against a run that was
# never interrupted. Each kill comes at a random moment after the attempt
# saved its first checkpoint (renamed into place: step-NNNNNNNN, not the
# .tmp directory it is written in), so every attempt gets further; it may
# land anywhere in a step, a checkpoint's writing included.
long=(--set train.steps=32 --quiet)
"$lws" "${run[@]}" "${long[@]}" --out "$dir/straight" >/dev/null 2>&1
RANDOM=7
kills=0
for attempt in $(seq 1 20); do
    if ls "$dir/killed/checkpoints/"step-???????? >/dev/null 2>&1; then
        from=(--resume "$dir/killed")
    else
        from=(--overwrite)
    fi
    touch "$dir/marker"; sleep 0.01
    "$lws" "${run[@]}" "${long[@]}" --out "$dir/killed" "${from[@]}" >>"$dir/killed.log" 2>&1 &
    pid=$!
    if [ $kills -lt 5 ]; then
        for _ in $(seq 1 600); do
            [ -n "$(find "$dir/killed/checkpoints" -maxdepth 1 -name 'step-????????' -newer "$dir/marker" 2>/dev/null)" ] && break
            kill -0 $pid 2>/dev/null || break
            sleep 0.05
        done
        sleep "$(printf '0.%02d' $((RANDOM % 30)))"
        if kill -KILL $pid 2>/dev/null; then kills=$((kills + 1)); fi
    fi
    wait $pid; rc=$?
    [ $rc -eq 0 ] && break
done
check "killed $kills times, then finished (exit $rc)" '[ $kills -eq 5 ] && [ $rc -eq 0 ]'
final=checkpoints/step-00000032
check "final weights equal the uninterrupted run's" 'same_tensors "$dir/straight/$final/model.safetensors" "$dir/killed/$final/model.safetensors"'
check "... and the optimizer's moments" 'same_tensors "$dir/straight/$final/optimizer.safetensors" "$dir/killed/$final/optimizer.safetensors"'
steps=$($py -c "
import json
print(' '.join(str(json.loads(l)['step']) for l in open('$dir/killed/log.jsonl') if '\"loss\"' in l))")
check "the log holds each step once" '[ "$steps" = "$(seq -s " " 1 32)" ]'
finish
