#!/usr/bin/env bash
# lws train as one run per directory, configs overridden from the command
# line, and plans checked before anything is allocated:
#  - --dry-run: the paper's crown-18l does not fit lavapipe (exit 1, the heap
#    named), a tiny config fits (exit 0); neither allocates device memory;
#  - --set: typed overrides reach the run (--print-config, config.json, the
#    checkpoint's metadata); bad ones are refused naming the JSON path;
#  - a run directory that holds a run is refused without --resume or
#    --overwrite; --resume RUN continues in RUN, its log holding each step
#    once; resuming from an older checkpoint needs --branch (the later ones
#    move aside); every run directory keeps the config it was started with;
#  - lws eval of a checkpoint equals the trainer's validation of it exactly
#    (one evaluation function).
source tests/lib.sh cli-run "$1"

# 1. Dry runs.
out=$("$lws" train configs/paper/crown-18l.json --dry-run 2>&1); rc=$?
check "crown-18l --dry-run exits 1 naming the heap it exceeds" \
    '[ $rc -eq 1 ] && [[ "$out" == *"memory plan"* && "$out" == *"does not fit"* && "$out" == *"GiB of device memory"* ]]'
check "crown-18l --dry-run allocates nothing" '[[ "$out" == *"allocated by this dry run: 0 bytes"* ]]'
out=$("$lws" train configs/tiny/crown.json --dry-run 2>&1); rc=$?
check "tiny --dry-run exits 0 and fits" '[ $rc -eq 0 ] && [[ "$out" == *"fits:"* && "$out" == *"allocated by this dry run: 0 bytes"* ]]'
out=$("$lws" bench configs/paper/crown-18l.json --dry-run --micro-batch 1 --seq-len 64 2>&1); rc=$?
check "bench --dry-run plans the benchmark's shape" '[ $rc -eq 1 ] && [[ "$out" == *"micro-batch 1 x 64"* && "$out" == *"0 bytes"* ]]'

# 2. Overrides.
"$lws" train configs/tiny/crown.json --set train.seed=3 --set lws.variant=reverse \
      --set model.n_layers=8 --print-config >"$dir/printed.json" 2>&1; rc=$?
check "--set values in --print-config" "[ $rc -eq 0 ] && $py - '$dir/printed.json' <<'PY'
import json, sys
c = json.load(open(sys.argv[1]))
assert c['train']['seed'] == 3 and c['model']['n_layers'] == 8, c
assert len(c['lws']['ffn_dims']) == 8, c
PY"
msg=$("$lws" train configs/tiny/crown.json --set train.sed=3 --dry-run 2>&1); rc=$?
check "unknown override path refused with did-you-mean" '[ $rc -ne 0 ] && [[ "$msg" == *"--set"* && "$msg" == *"train.sed"* && "$msg" == *"train.seed"* ]]'
msg=$("$lws" train configs/tiny/crown.json --set train.lr=fast --dry-run 2>&1); rc=$?
check "wrong override type refused naming the path" '[ $rc -ne 0 ] && [[ "$msg" == *"train.lr"* && "$msg" == *"number"* ]]'
msg=$("$lws" train configs/tiny/crown.json --set model.n_layers=0 --dry-run 2>&1); rc=$?
check "out-of-range override refused naming the path" '[ $rc -ne 0 ] && [[ "$msg" == *"--set"* && "$msg" == *"model.n_layers"* ]]'

cat /usr/share/common-licenses/* >"$dir/corpus.txt"
"$lws" prepare --tokenizer bytes "$dir/corpus.txt" -o "$dir/data" --val-fraction 0.05 >/dev/null 2>&1
cat >"$dir/small.json" <<JSON
{"extends": "$root/configs/tiny/crown.json",
 "train": {"seq_len": 32, "micro_batch": 4, "steps": 6, "warmup_steps": 2, "lr": 5e-3,
           "log_every": 1, "checkpoint_every": 2, "keep_checkpoints": 0, "out_dir": "$dir/run"},
 "data": {"train": "$dir/data/train.tok", "val": "$dir/data/val.tok"},
 "eval": {"every": 3, "tokens": 1024}}
JSON
"$lws" train "$dir/small.json" --peak-tflops 1 --set train.steps=4 --set train.seed=7 >"$dir/first.log" 2>&1
check "a run with overrides" '[ $? -eq 0 ] && [ -f "$dir/run/checkpoints/step-00000004/model.safetensors" ]'
check "config.json is the resolved config with the overrides" "$py -c '
import json; c = json.load(open(\"$dir/run/config.json\"))
assert c[\"train\"][\"steps\"] == 4 and c[\"train\"][\"seed\"] == 7, c[\"train\"]'"
check "the checkpoint's metadata records the overrides" "$py -c '
import json, struct
b = open(\"$dir/run/checkpoints/step-00000004/model.safetensors\", \"rb\").read()
m = json.loads(b[8:8 + struct.unpack(\"<Q\", b[:8])[0]])[\"__metadata__\"]
c = json.loads(m[\"lws_config\"]); assert c[\"train\"][\"seed\"] == 7 and c[\"train\"][\"steps\"] == 4'"

# 3. The run directory.
msg=$("$lws" train "$dir/small.json" --peak-tflops 1 2>&1); rc=$?
check "a directory holding a run is refused" '[ $rc -ne 0 ] && [[ "$msg" == *"already holds a run"* && "$msg" == *"--resume"* && "$msg" == *"--overwrite"* ]]'
check "... and left as it was" '[ $(grep -c "\"loss\"" "$dir/run/log.jsonl") -eq 4 ]'
msg=$("$lws" train "$dir/small.json" --peak-tflops 1 --set train.seed=7 --resume "$dir/run/checkpoints/step-00000002" 2>&1); rc=$?
check "resuming from an older checkpoint of a run is refused without --branch" '[ $rc -ne 0 ] && [[ "$msg" == *"step-00000004"* && "$msg" == *"--branch"* ]] && [ -d "$dir/run/checkpoints/step-00000004" ]'
"$lws" train "$dir/small.json" --peak-tflops 1 --set train.seed=7 --resume "$dir/run/checkpoints/step-00000002" --branch >"$dir/resume.log" 2>&1
check "--resume --branch of a run's checkpoint continues in that run" '[ $? -eq 0 ] && [ -f "$dir/run/checkpoints/step-00000006/model.safetensors" ]'
check "... the later checkpoint moved aside, named" '[ -f "$dir/run/superseded/after-step-00000002/checkpoints/step-00000004/model.safetensors" ] && grep -q "superseded/after-step-00000002" "$dir/resume.log"'
steps=$($py -c "
import json
print(' '.join(str(json.loads(l)['step']) for l in open('$dir/run/log.jsonl') if '\"loss\"' in l))")
check "the log has each step once: $steps" '[ "$steps" = "1 2 3 4 5 6" ]'
check "the changed config is kept beside the first" '[ -f "$dir/run/config.json" ] && ls "$dir/run/"config.step-00000002.json >/dev/null'
"$lws" train "$dir/small.json" --peak-tflops 1 --overwrite --set train.steps=3 >"$dir/over.log" 2>&1
check "--overwrite starts afresh" '[ $? -eq 0 ] && [ $(grep -c "\"loss\"" "$dir/run/log.jsonl") -eq 3 ] && [ ! -d "$dir/run/checkpoints/step-00000006" ]'

# 4. One evaluation: lws eval of the step-6 checkpoint equals the trainer's
# validation at step 6 to the last digit.
"$lws" train "$dir/small.json" --peak-tflops 1 --out "$dir/run2" --quiet >/dev/null 2>&1
val=$(grep '"val_loss"' "$dir/run2/log.jsonl" | tail -1 | $py -c 'import json, sys; print(repr(json.load(sys.stdin)["val_loss"]))')
got=$("$lws" eval "$dir/run2" --data "$dir/data/val.tok" --tokens 1024 --json | $py -c 'import json, sys; print(repr(json.load(sys.stdin)["loss"]))')
check "lws eval $got == the trainer's validation $val" '[ -n "$got" ] && [ "$got" = "$val" ]'
got=$("$lws" eval "$dir/run2" --data "$dir/data/val.tok" --tokens 1024 --batch 3 --json | $py -c 'import json, sys; print(repr(json.load(sys.stdin)["loss"]))')
check "... whatever the batch (a padded last batch): $got" "awk 'BEGIN{d = $got - $val; exit !(d < 1e-6 && d > -1e-6)}'"
finish
