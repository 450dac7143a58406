#!/usr/bin/env bash
# Checkpoints that lws writes always load, and files it did not write are not
# trusted:
#  1. every tiny config, and configs with overrides, train to a checkpoint
#     that lws eval and lws sample read back (--steps below the warmup is
#     refused up front);
#  2. no checkpoint holds a NaN: an update that overflows stops the run
#     before any checkpoint, a learning rate fp32 cannot hold is refused, a
#     NaN written into a checkpoint is refused on load, and lws eval exits
#     non-zero on a non-finite loss;
#  3. a validation file shorter than one window is refused at start-up;
#  5. resuming from an older checkpoint of a run needs --branch, which moves
#     the later checkpoints aside, and the run's newest is then the branch's;
#  7. state.json is checked field by field, and against its directory (each
#     field's cases: test_checkpoint_state.c);
#  8. a checkpoint's stored config cannot make lws open another file;
# 12. the log holds each step once after a branch.
source tests/lib.sh cli-checkpoints "$1"

cat /usr/share/common-licenses/* >"$dir/corpus.txt"
"$lws" prepare --tokenizer bytes "$dir/corpus.txt" -o "$dir/data" --val-fraction 0.05 >/dev/null 2>&1
"$lws" tokenizer train --vocab 300 "$dir/corpus.txt" -o "$dir/bpe.json" >/dev/null 2>&1
"$lws" prepare --tokenizer "$dir/bpe.json" "$dir/corpus.txt" -o "$dir/bpe" --val-fraction 0.05 >/dev/null 2>&1
check "data prepared (bytes and a 300-token BPE)" '[ -s "$dir/data/val.tok" ] && [ -s "$dir/bpe/val.tok" ]'
short=(--set train.seq_len=32 --set train.micro_batch=2 --set train.warmup_steps=0
       --set eval.tokens=64 --peak-tflops 1 --quiet)
bytes_data=(--set data.train="$dir/data/train.tok" --set data.val="$dir/data/val.tok")

# 1. Round trips: train 1 step, then eval and sample its checkpoint.
round_trip() { # NAME CONFIG ARGS...
    local name=$1 cfg=$2; shift 2
    "$lws" train "$cfg" "${short[@]}" --set train.steps=1 --out "$dir/rt-$name" "$@" \
        >"$dir/rt-$name.log" 2>&1 || { echo "  train: $(tail -1 "$dir/rt-$name.log")"; return 1; }
    local val=$dir/data/val.tok
    [[ " $* " == *"bpe.json"* ]] && val=$dir/bpe/val.tok
    "$lws" eval "$dir/rt-$name" --data "$val" --tokens 64 --json >"$dir/rt-$name.eval" 2>&1 ||
        { echo "  eval: $(tail -1 "$dir/rt-$name.eval")"; return 1; }
    "$lws" sample "$dir/rt-$name" --prompt "a" --tokens 4 --temperature 0 >"$dir/rt-$name.sample" 2>&1 ||
        { echo "  sample: $(tail -1 "$dir/rt-$name.sample")"; return 1; }
}
for c in isotropic vanilla framed reverse crown; do
    check "tiny $c: trained, evaluated and sampled" "round_trip $c configs/tiny/$c.json ${bytes_data[*]}"
done
check "crown-bpe on a BPE vocabulary" "round_trip bpe configs/tiny/crown-bpe.json --set model.vocab_size=300 \
    --set data.tokenizer=$dir/bpe.json --set data.train=$dir/bpe/train.tok --set data.val=$dir/bpe/val.tok"
check "overrides: name, description, block, schedule, GQA, widths, a held-out split" \
    "round_trip over configs/tiny/crown.json --set name=café-ü --set description='ünïcode ✓' \
    --set model.block=pre_norm --set model.tied_embeddings=true --set model.qk_norm=false \
    --set train.schedule=wsd --set train.decay_fraction=0.5 --set lws.variant=framed \
    --set 'lws.gqa={\"kv_heads\": 1}' --set lws.ffn_divisor=16 --set model.rope_theta=1.0001 \
    --set model.norm_eps=1 --set train.steps=3 --set data.train=$dir/data/train.tok \
    --set data.val=null --set data.val_tokens=4096"

# --steps below the tiny configs' 20 warmup steps: refused before training
# (a config accepted when written is accepted when read back), the fix named.
msg=$("$lws" train configs/tiny/crown.json "${bytes_data[@]}" --steps 5 --out "$dir/steps5" 2>&1); rc=$?
check "--steps 5 with 20 warmup steps is refused up front" '[ $rc -ne 0 ] && [[ "$msg" == *"--set train.warmup_steps"* ]] && [ ! -d "$dir/steps5/checkpoints" ]'
check "... and with the fix it trains to a checkpoint eval and sample load" \
    "round_trip steps5 configs/tiny/crown.json ${bytes_data[*]} --steps 5 --set train.warmup_steps=2"

# 2. Non-finite weights never reach a checkpoint.
msg=$("$lws" train configs/tiny/crown.json "${short[@]}" "${bytes_data[@]}" --set train.lr=1e40 \
      --out "$dir/lr" 2>&1); rc=$?
check "lr 1e40 (beyond fp32) refused before training" '[ $rc -ne 0 ] && [[ "$msg" == *"train.lr"* && "$msg" == *"fp32"* ]] && [ ! -d "$dir/lr" ]'
msg=$("$lws" train configs/tiny/crown.json "${short[@]}" "${bytes_data[@]}" --set train.lr=3e38 \
      --set train.steps=5 --set train.checkpoint_every=1 --out "$dir/nan" 2>&1); rc=$?
check "an update that overflows stops the run naming the update" '[ $rc -ne 0 ] && [[ "$msg" == *"update 1 left"* && "$msg" == *"NaN or infinite"* ]]'
check "... and no checkpoint was written" '[ ! -d "$dir/nan/checkpoints" ] || [ -z "$(ls "$dir/nan/checkpoints")" ]'
# Huge but finite weights: the run stops at step 2 on a non-finite loss.
"$lws" train configs/tiny/crown.json "${short[@]}" "${bytes_data[@]}" --set train.lr=1e30 \
    --set train.grad_clip=0 --set train.steps=5 --out "$dir/huge" >"$dir/huge.log" 2>&1; rc=$?
check "a non-finite loss stops the run (step 1 kept)" '[ $rc -ne 0 ] && grep -q "saved now" "$dir/huge.log" && [ -d "$dir/huge/checkpoints/step-00000001" ]'
msg=$("$lws" eval "$dir/huge" --data "$dir/data/val.tok" --tokens 64 2>&1); rc=$?
check "lws eval exits non-zero on a non-finite loss" '[ $rc -ne 0 ] && [[ "$msg" == *"the loss on"* ]]'
mkdir -p "$dir/nanckpt"
cp "$dir/rt-crown/checkpoints/step-00000001/model.safetensors" "$dir/nanckpt/"
$py - "$dir/nanckpt/model.safetensors" <<'PY'
import json, struct, sys
b = bytearray(open(sys.argv[1], "rb").read())
n = struct.unpack("<Q", b[:8])[0]
h = json.loads(b[8:8 + n])
start = 8 + n + h["layers.2.ffn.w1.weight"]["data_offsets"][0]
b[start + 4 * 7:start + 4 * 8] = struct.pack("<f", float("nan"))
open(sys.argv[1], "wb").write(b)
PY
msg=$("$lws" eval "$dir/nanckpt" --data "$dir/data/val.tok" --tokens 64 2>&1); rc=$?
check "a NaN in a checkpoint is refused on load, named" '[ $rc -ne 0 ] && [[ "$msg" == *"layers.2.ffn.w1.weight"* && "$msg" == *"element 7"* ]]'

# 3. A validation file shorter than one window: refused before step 1.
$py -c "
import struct
t = list(range(20))
h = b'LWSTOKNS' + struct.pack('<IIIIQ', 1, 2, 256, 256, len(t)) + b'bytes'.ljust(64, b'\0') + bytes(160)
open('$dir/short.tok', 'wb').write(h + struct.pack('<%dH' % len(t), *t))"
msg=$("$lws" train configs/tiny/crown.json "${short[@]}" "${bytes_data[@]}" --set train.steps=5 \
      --val "$dir/short.tok" --out "$dir/shortval" 2>&1); rc=$?
check "a validation file shorter than one window is refused at start-up, named" '[ $rc -ne 0 ] && [[ "$msg" == *"short.tok"* && "$msg" == *"one window"* ]] && ! grep -qs "\"loss\"" "$dir/shortval/log.jsonl"'

# 5 and 12. Branching: a run to step 6 (checkpoints 4, 5, 6 kept), resumed
# from step 4 with a new learning rate to step 5, then resumed as a run.
run=$dir/branch
line=(configs/tiny/crown.json "${short[@]}" "${bytes_data[@]}" --set train.checkpoint_every=1
      --set train.keep_checkpoints=3 --out "$run")
"$lws" train "${line[@]}" --set train.steps=6 >/dev/null 2>&1
check "a run of 6 steps keeps checkpoints 4, 5, 6" '[ "$(ls "$run/checkpoints" | tr "\n" " ")" = "step-00000004 step-00000005 step-00000006 " ]'
msg=$("$lws" train "${line[@]}" --set train.steps=5 --set train.lr=1e-3 --resume "$run/checkpoints/step-00000004" 2>&1); rc=$?
check "resuming from step 4 of a run at step 6 is refused without --branch" '[ $rc -ne 0 ] && [[ "$msg" == *"--branch"* && "$msg" == *"step-00000006"* ]] && [ -d "$run/checkpoints/step-00000006" ]'
out=$("$lws" train "${line[@]}" --set train.steps=5 --set train.lr=1e-3 --resume "$run/checkpoints/step-00000004" --branch 2>&1); rc=$?
check "--branch continues from step 4, saying where steps 5 and 6 went" '[ $rc -eq 0 ] && [[ "$out" == *"superseded/after-step-00000004"* ]] && [ -d "$run/superseded/after-step-00000004/checkpoints/step-00000006" ]'
out=$("$lws" train "${line[@]}" --set train.steps=7 --set train.lr=1e-3 --resume "$run" 2>&1); rc=$?
check "--resume RUN then picks the branch's step 5, not the old step 6" '[ $rc -eq 0 ] && [[ "$out" == *"resumed from $run/checkpoints/step-00000005 at step 5"* ]]'
check "pruning kept the branch's checkpoints" '[ "$(ls "$run/checkpoints" | tr "\n" " ")" = "step-00000005 step-00000006 step-00000007 " ]'
steps=$($py -c "
import json
print(' '.join(str(json.loads(l)['step']) for l in open('$run/log.jsonl') if '\"loss\"' in l))")
check "the log holds each step once: $steps" '[ "$steps" = "1 2 3 4 5 6 7" ]'
old=$($py -c "
import json
print(' '.join(str(json.loads(l)['step']) for l in open('$run/superseded/after-step-00000004/log.jsonl') if '\"loss\"' in l))")
check "the superseded steps' log lines are kept beside them: $old" '[ "$old" = "5 6" ]'

# 7. state.json: a bad one refused naming the file and the field, the
# checkpoint left as it was (every field: test_checkpoint_state.c).
good=$run/checkpoints/step-00000007
state_refused() { # WHAT FIELD JSON
    rm -rf "$dir/st"; mkdir -p "$dir/st/checkpoints"; cp -r "$good" "$dir/st/checkpoints/"
    local s=$dir/st/checkpoints/step-00000007/state.json
    printf '%s' "$3" >"$s"
    local msg rc
    msg=$("$lws" train "${line[@]}" --set train.steps=9 --resume "$dir/st" --out "$dir/st" 2>&1); rc=$?
    [ $rc -ne 0 ] && [[ "$msg" == *"state.json"* && "$msg" == *"$2"* ]] && [ ! -d "$dir/st/checkpoints/step-00000008" ] ||
        { echo "  rc $rc: $msg" | tail -1; return 1; }
}
fields='"tokens_seen": 448, "sampler_seed": "42", "sampler_counter": "14", "elapsed_s": 1.5'
check "step -5" "state_refused neg step '{\"step\": -5, $fields}'"
check "step 5 in step-00000007/" "state_refused dir 'disagrees with its directory' '{\"step\": 5, $fields}'"
msg=$("$lws" train "${line[@]}" --set train.steps=6 --resume "$run" 2>&1); rc=$?
check "a checkpoint past train.steps is refused" '[ $rc -ne 0 ] && [[ "$msg" == *"past train.steps"* ]]'

# 8. A stored config names no other file: extends is refused before any
# file is opened, and no file's text is echoed.
mkdir -p "$dir/evil"
evil() { # CONFIG_JSON
    $py - "$good/model.safetensors" "$dir/evil/model.safetensors" "$1" <<'PY'
import json, struct, sys
b = open(sys.argv[1], "rb").read()
n = struct.unpack("<Q", b[:8])[0]
h = json.loads(b[8:8 + n]); h["__metadata__"]["lws_config"] = sys.argv[3]
t = json.dumps(h).encode(); t += b" " * (-len(t) % 8)
open(sys.argv[2], "wb").write(struct.pack("<Q", len(t)) + t + b[8 + n:])
PY
}
printf 'SECRET-LINE hunter2\n' >"$dir/secret.txt"
mkfifo "$dir/fifo"
for target in "$dir/secret.txt" /dev/zero /dev/urandom "$dir/fifo"; do
    evil "{\"extends\": \"$target\"}"
    msg=$(timeout 20 "$lws" eval "$dir/evil" --data "$dir/data/val.tok" 2>&1); rc=$?
    check "extends $target in a checkpoint refused, nothing read" '[ $rc -eq 1 ] && [[ "$msg" == *"model.safetensors"* && "$msg" == *"extends"* && "$msg" == *"resolved"* && "$msg" != *"SECRET"* ]]'
done
evil "$($py -c "
import json, struct
b = open('$good/model.safetensors', 'rb').read()
c = json.loads(json.loads(b[8:8 + struct.unpack('<Q', b[:8])[0]])['__metadata__']['lws_config'])
c['lws']['match_config'] = '/etc/passwd'
print(json.dumps(c))")"
msg=$("$lws" sample "$dir/evil" --tokens 4 2>&1); rc=$?
check "match_config in a checkpoint refused" '[ $rc -ne 0 ] && [[ "$msg" == *"lws.match_config"* && "$msg" == *"resolved"* ]]'
finish
