#!/usr/bin/env bash
# lws eval end to end: loss, perplexity and bits per byte of a checkpoint on a
# token file agree with the trainer's own validation; --tokens, --json, the
# whole file; a BPE model's bits per byte from its vocabulary (n/a, with the
# reason, without it); and checkpoints that do not match their configuration
# (a tensor of the wrong shape, a missing tensor, an extra tensor, a
# truncated file) are refused by `lws eval` and `lws sample` with a message
# that names the file, the tensor, and what was expected and found.
source tests/lib.sh cli-eval "$1"

cat /usr/share/common-licenses/* >"$dir/corpus.txt"
"$lws" prepare --tokenizer bytes "$dir/corpus.txt" -o "$dir/data" --val-fraction 0.05 >"$dir/prepare.log" 2>&1
# 6 steps of the tiny crown config at seq_len 32; validation of the first
# 2048 tokens at the end, logged for the comparison below.
cat >"$dir/tiny.json" <<JSON
{"extends": "$root/configs/tiny/crown.json",
 "train": {"seq_len": 32, "micro_batch": 4, "steps": 6, "warmup_steps": 2, "lr": 5e-3,
           "log_every": 1, "checkpoint_every": 0, "out_dir": "$dir/run"},
 "data": {"train": "$dir/data/train.tok", "val": "$dir/data/val.tok"},
 "eval": {"every": 6, "tokens": 2048}}
JSON
"$lws" train "$dir/tiny.json" --peak-tflops 1 --quiet >"$dir/train.log" 2>&1
check "a checkpoint to evaluate" '[ -f "$dir/run/checkpoints/step-00000006/model.safetensors" ]'

# 1. The trainer's validation loss over the same 64 windows of 32.
out=$("$lws" eval "$dir/run" --data "$dir/data/val.tok" --tokens 2048 2>&1); rc=$?
echo "$out" | sed 's/^/  /'
check "eval exits 0 and prints loss, perplexity, bits per byte, tokens, tokens/s" \
    '[ $rc -eq 0 ] && [[ "$out" == *"loss "* && "$out" == *"perplexity "* && "$out" == *"bits/byte "* && "$out" == *"tokens/s "* ]]'
# Same windows, same kernels, the same summation order: equal to ~1e-7
# (the trainer's model is built for training, this one for inference).
val=$(grep '"val_loss"' "$dir/run/log.jsonl" | tail -1 | sed 's/.*"val_loss":\([^,}]*\).*/\1/')
got=$("$lws" eval "$dir/run" --data "$dir/data/val.tok" --tokens 2048 --json 2>/dev/null |
      $py -c 'import json, sys; print(repr(json.load(sys.stdin)["loss"]))')
check "eval loss $got matches the trainer's validation loss $val" \
    "awk 'BEGIN{d = $got - $val; exit !(d < 1e-6 && d > -1e-6)}'"
check "2048 tokens in 64 windows of 32" '[[ "$out" == *"tokens      2048 (64 windows of 32"* ]]'

# 2. --json: bits per byte = loss / ln 2 for bytes; perplexity = exp(loss).
json=$("$lws" eval "$dir/run" --data "$dir/data/val.tok" --tokens 100 --batch 3 --json 2>"$dir/json.err"); rc=$?
check "--json is one object with the figures" "[ $rc -eq 0 ] && echo '$json' | $py -c '
import json, math, sys
o = json.load(sys.stdin)
assert o[\"tokens\"] == 128 and o[\"windows\"] == 4 and o[\"batch\"] == 3, o  # ceil(100 / 32) windows
assert abs(o[\"bits_per_byte\"] - o[\"loss\"] / math.log(2)) < 1e-9, o
assert abs(o[\"perplexity\"] - math.exp(o[\"loss\"])) < 1e-6 * o[\"perplexity\"], o
assert o[\"tokens_per_second\"] > 0 and o[\"tokenizer\"] == \"bytes\", o
'"

# 3. The whole file: every complete window.
n=$($py -c "import os; print((os.path.getsize('$dir/data/val.tok') - 256) // 2)")
json=$("$lws" eval "$dir/run" --data "$dir/data/val.tok" --json 2>/dev/null)
check "the whole file: (n - 1) / 32 windows of $n tokens" "echo '$json' | $py -c '
import json, sys
o = json.load(sys.stdin)
assert o[\"windows\"] == ($n - 1) // 32 and o[\"tokens\"] == o[\"windows\"] * 32, o
'"

# 4. Refusals of the data: too short, another tokenizer, a missing file.
$py -c "
import struct
h = b'LWSTOKNS' + struct.pack('<IIIIQ', 1, 2, 256, 256, 20) + b'bytes'.ljust(64, b'\0') + bytes(160)
open('$dir/short.tok', 'wb').write(h + struct.pack('<20H', *range(20)))"
msg=$("$lws" eval "$dir/run" --data "$dir/short.tok" 2>&1); rc=$?
check "a file shorter than one window is refused" '[ $rc -ne 0 ] && [[ "$msg" == *"short.tok"* && "$msg" == *"seq_len + 1 = 33"* ]]'
msg=$("$lws" eval "$dir/run" --data "$dir/missing.tok" 2>&1); rc=$?
check "a missing data file is refused naming it" '[ $rc -ne 0 ] && [[ "$msg" == *"missing.tok"* ]]'
# Without --data: the checkpoint's own validation file and eval.tokens, as
# the training log; --all scores all of it, as --data of the same file does.
read -r dloss dtokens < <("$lws" eval "$dir/run" --json 2>/dev/null |
    $py -c 'import json, sys; o = json.load(sys.stdin); print(repr(o["loss"]), o["tokens"])')
check "no --data: the run's validation file and eval.tokens give the log's loss ($dloss vs $val)" \
    '[ "$dtokens" = 2048 ] && awk "BEGIN{d = $dloss - $val; exit !(d < 1e-6 && d > -1e-6)}"'
all=$("$lws" eval "$dir/run" --all --json 2>/dev/null | $py -c 'import json, sys; o = json.load(sys.stdin); print(o["loss"], o["tokens"])')
whole=$("$lws" eval "$dir/run" --data "$dir/data/val.tok" --json 2>/dev/null | $py -c 'import json, sys; o = json.load(sys.stdin); print(o["loss"], o["tokens"])')
check "--all scores the whole validation file, as --data of it does" '[ -n "$all" ] && [ "$all" = "$whole" ]'
msg=$("$lws" eval "$dir/run" --all --tokens 64 2>&1); rc=$?
check "--all with --tokens: usage error" '[ $rc -eq 2 ] && [[ "$msg" == *"--all"* ]]'
msg=$("$lws" eval "$dir/run" --data "$dir/data/val.tok" --tokens 0 2>&1); rc=$?
check "--tokens 0 refused" '[ $rc -eq 2 ] && [[ "$msg" == *"--tokens"* ]]'

# 5. A BPE model: bits per byte over the bytes its tokens spell, once the
# vocabulary is given; n/a with the reason without it.
"$lws" tokenizer train --vocab 300 "$dir/corpus.txt" -o "$dir/tok.json" >/dev/null 2>&1
name=$("$lws" tokenizer info --tokenizer "$dir/tok.json" | awk '$1 == "name" {print $2}')
"$lws" prepare --tokenizer "$dir/tok.json" "$dir/corpus.txt" -o "$dir/bpe" --val-fraction 0.05 >/dev/null 2>&1
cat >"$dir/bpe.json" <<JSON
{"extends": "$dir/tiny.json", "model": {"vocab_size": 300},
 "train": {"steps": 2, "warmup_steps": 1, "out_dir": "$dir/bperun"},
 "data": {"train": "$dir/bpe/train.tok", "val": "$dir/bpe/val.tok", "tokenizer": "$name"},
 "eval": {"every": 0}}
JSON
"$lws" train "$dir/bpe.json" --peak-tflops 1 --quiet >"$dir/bpetrain.log" 2>&1
out=$("$lws" eval "$dir/bperun" --data "$dir/bpe/val.tok" --tokens 640 2>&1); rc=$?
check "BPE model without its vocabulary: bits per byte n/a with the reason" \
    '[ $rc -eq 0 ] && [[ "$out" == *"bits/byte   n/a: "*"$name"*"--tokenizer"* ]]'
json=$("$lws" eval "$dir/bperun" --data "$dir/bpe/val.tok" --tokens 640 --tokenizer "$dir/tok.json" --json 2>&1); rc=$?
check "BPE model with --tokenizer: bits per byte from the bytes its tokens spell" "[ $rc -eq 0 ] && echo '$json' | $py -c '
import json, math, sys
o = json.load(sys.stdin)
# 640 tokens of a 300-token vocabulary spell more than 640 bytes
assert o[\"bytes\"] > o[\"tokens\"] and abs(o[\"bits_per_byte\"] * o[\"bytes\"] * math.log(2) - o[\"loss\"] * o[\"tokens\"]) < 1e-6 * o[\"tokens\"], o
'"
msg=$("$lws" eval "$dir/bperun" --data "$dir/bpe/val.tok" --tokenizer bytes 2>&1); rc=$?
check "another tokenizer than the checkpoint's is refused" '[ $rc -ne 0 ] && [[ "$msg" == *"bytes"* && "$msg" == *"$name"* ]]'
msg=$("$lws" eval "$dir/bperun" --data "$dir/data/val.tok" 2>&1); rc=$?
check "a token file of another tokenizer is refused" '[ $rc -ne 0 ] && [[ "$msg" == *"data/val.tok"*"bytes"*"$name"* ]]'

# 6. Broken checkpoints: rewrite model.safetensors (valid safetensors, but
# not matching the configuration in its metadata), or cut it short.
good="$dir/run/checkpoints/step-00000006"
broken() { # broken NAME EDIT: a copy of the checkpoint with EDIT applied
    mkdir -p "$dir/$1"; cp "$good"/* "$dir/$1/"
    $py - "$good/model.safetensors" "$dir/$1/model.safetensors" "$2" <<'PY'
import json, struct, sys
src, dst, edit = sys.argv[1:]
b = open(src, "rb").read()
n = struct.unpack("<Q", b[:8])[0]
header = json.loads(b[8:8 + n]); data = b[8 + n:]
if edit == "truncate":
    open(dst, "wb").write(b[:-1000]); sys.exit(0)
meta = header.pop("__metadata__")
tensors = {k: data[v["data_offsets"][0]:v["data_offsets"][1]] for k, v in header.items()}
shapes = {k: v["shape"] for k, v in header.items()}
if edit == "shape":     # layer 1's W1 loses a row: [ffn, 64] -> [ffn - 1, 64]
    k = "layers.1.ffn.w1.weight"
    shapes[k] = [shapes[k][0] - 1, shapes[k][1]]; tensors[k] = tensors[k][:-4 * shapes[k][1]]
elif edit == "missing":
    del tensors["layers.2.attn.wv.weight"]
elif edit == "extra":
    tensors["layers.0.attn.bias"] = bytes(4 * 64); shapes["layers.0.attn.bias"] = [64]
out, offset = {"__metadata__": meta}, 0
for k, t in tensors.items():
    out[k] = {"dtype": "F32", "shape": shapes[k], "data_offsets": [offset, offset + len(t)]}
    offset += len(t)
h = json.dumps(out).encode()
h += b" " * (-len(h) % 8)
open(dst, "wb").write(struct.pack("<Q", len(h)) + h + b"".join(tensors.values()))
PY
}
header=$($py -c "
import json, struct; b = open('$good/model.safetensors', 'rb').read()
print(b[8:8 + struct.unpack('<Q', b[:8])[0]].decode())")
check "the checkpoint names layers.1.ffn.w1.weight (the tensor broken below)" \
    'grep -q "\"layers.1.ffn.w1.weight\"" <<<"$header"'
f1=$($py -c "
import json, struct; b = open('$good/model.safetensors', 'rb').read()
print(json.loads(b[8:8 + struct.unpack('<Q', b[:8])[0]])['layers.1.ffn.w1.weight']['shape'][0])")
broken shape shape; broken missing missing; broken extra extra; broken truncated truncate
for cmd in eval sample; do
    args=(--data "$dir/data/val.tok"); [ $cmd = sample ] && args=(--tokens 5)
    msg=$("$lws" $cmd "$dir/shape" "${args[@]}" 2>&1); rc=$?
    check "$cmd: wrong shape names the tensor, found and expected" \
        '[ $rc -ne 0 ] && [[ "$msg" == *"shape/model.safetensors"* && "$msg" == *"layers.1.ffn.w1.weight"* && "$msg" == *"F32 [$((f1 - 1)), 64]"* && "$msg" == *"needs F32 [$f1, 64]"* ]]'
    msg=$("$lws" $cmd "$dir/missing" "${args[@]}" 2>&1); rc=$?
    check "$cmd: a missing tensor is named with its expected shape" \
        '[ $rc -ne 0 ] && [[ "$msg" == *"missing/model.safetensors"* && "$msg" == *"layers.2.attn.wv.weight"*"missing"* && "$msg" == *"F32 ["* ]]'
    msg=$("$lws" $cmd "$dir/extra" "${args[@]}" 2>&1); rc=$?
    check "$cmd: an extra tensor is named" \
        '[ $rc -ne 0 ] && [[ "$msg" == *"extra/model.safetensors"* && "$msg" == *"layers.0.attn.bias"*"not part of"* ]]'
    msg=$("$lws" $cmd "$dir/truncated" "${args[@]}" 2>&1); rc=$?
    check "$cmd: a truncated file is named as truncated" \
        '[ $rc -ne 0 ] && [[ "$msg" == *"truncated/model.safetensors"* && "$msg" == *"truncated"* ]]'
done
echo "  e.g.: $("$lws" eval "$dir/shape" --data "$dir/data/val.tok" 2>&1)"
finish
