#!/usr/bin/env bash
# python/lws_torch.py, the PyTorch loader: a checkpoint lws trained loads
# into an nn.Module whose forward gives the loss `lws eval` gives on the
# same windows (byte-level crown, post-norm; BPE framed, pre-norm with tied
# embeddings, bits per byte from the vocabulary), from a run directory, a
# checkpoint directory or its model.safetensors; a path without a checkpoint
# is refused naming it.
source tests/lib.sh py-lws-torch "$1"
if ! $py -c "import torch" 2>/dev/null; then
    echo "SKIP: python3-torch not installed (/usr/bin/python3 cannot import torch; apt install python3-torch)"
    exit 0
fi

cat /usr/share/common-licenses/* >"$dir/corpus.txt"
"$lws" prepare --tokenizer bytes "$dir/corpus.txt" -o "$dir/bytes" --val-fraction 0.05 >/dev/null 2>&1
"$lws" tokenizer train --vocab 300 "$dir/corpus.txt" -o "$dir/tok.json" >/dev/null 2>&1
"$lws" prepare --tokenizer "$dir/tok.json" "$dir/corpus.txt" -o "$dir/bpe" --val-fraction 0.05 >/dev/null 2>&1
# 6 steps at seq_len 32; validation of 1024 tokens, the size lws eval and
# the loader take from the checkpoint's config.
for run in crown framed; do
    data="$dir/bytes" tokenizer=bytes vocab=256
    [ $run = framed ] && data="$dir/bpe" tokenizer="$dir/tok.json" vocab=300
    cat >"$dir/$run.json" <<JSON
{"extends": "$root/configs/tiny/$run.json", "model": {"vocab_size": $vocab},
 "lws": {"match_config": null},
 "train": {"seq_len": 32, "micro_batch": 4, "steps": 6, "warmup_steps": 2, "lr": 5e-3,
           "checkpoint_every": 0, "out_dir": "$dir/run-$run"},
 "data": {"train": "$data/train.tok", "val": "$data/val.tok", "tokenizer": "$tokenizer"},
 "eval": {"every": 6, "tokens": 1024}}
JSON
    "$lws" train "$dir/$run.json" --peak-tflops 1 --quiet >"$dir/train-$run.log" 2>&1
    check "$run: a checkpoint to load" '[ -f "$dir/run-$run/checkpoints/step-00000006/model.safetensors" ]'
    "$lws" eval "$dir/run-$run" --json >"$dir/eval-$run.json" 2>"$dir/eval-$run.err"
    check "$run: lws eval scores it" '[ $? -eq 0 ]'
done

$py - "$dir" <<'PY' >"$dir/loader.log" 2>&1
import json, math, os, sys
sys.path.insert(0, "python")
import torch
import lws_torch

d = sys.argv[1]
failed = 0
def check(name, ok, detail=""):
    global failed
    print(("ok   " if ok else "FAIL ") + name + (f" ({detail})" if detail else ""))
    failed += not ok

for run in ("crown", "framed"):
    want = json.load(open(f"{d}/eval-{run}.json"))
    ckpt = f"{d}/run-{run}/checkpoints/step-00000006"
    for path in (f"{d}/run-{run}", ckpt, f"{ckpt}/model.safetensors"):
        model = lws_torch.load(path)
        check(f"{run}: load({os.path.relpath(path, d)}) finds the checkpoint",
              os.path.samefile(model.checkpoint, ckpt) and isinstance(model, torch.nn.Module)
              and not model.training)
    tokens, token_bytes = lws_torch.validation_tokens(model.config)
    # float32 as lws computes: the sums of a few thousand float32 logits
    # differ in rounding only (1e-5 nats is 100x that and far below a
    # wrong weight or block, which moves the loss by > 1e-2).
    loss, count, bpb = lws_torch.evaluate(model, tokens, token_bytes)
    check(f"{run}: float32 forward, loss {loss:.7f} vs lws eval {want['loss']:.7f}",
          count == want["tokens"] and abs(loss - want["loss"]) < 1e-5, f"{count} tokens")
    check(f"{run}: bits per byte {bpb:.6f} vs lws eval {want['bits_per_byte']:.6f}",
          bpb is not None and abs(bpb - want["bits_per_byte"]) < 2e-5)
    model64 = lws_torch.load(ckpt, dtype=torch.float64)
    loss64, _, _ = lws_torch.evaluate(model64, tokens, token_bytes, batch=3)
    check(f"{run}: float64 reference, another batch size: loss {loss64:.7f}",
          abs(loss64 - want["loss"]) < 1e-5)
    # The logits themselves, one window: the same model, not just the same mean.
    logits = model(tokens[:32].unsqueeze(0))
    check(f"{run}: logits (1, 32, vocab) and finite", tuple(logits.shape) ==
          (1, 32, model.config["model"]["vocab_size"]) and bool(torch.isfinite(logits).all()))

try:
    lws_torch.load(f"{d}/bytes")
    check("a directory without a checkpoint is refused", False)
except lws_torch.InputError as e:
    check("a directory without a checkpoint is refused, naming it", f"{d}/bytes" in str(e), str(e))
sys.exit(1 if failed else 0)
PY
rc=$?
sed 's/^/  /' "$dir/loader.log"
check "the loader's forward equals lws eval on trained checkpoints" '[ $rc -eq 0 ]'
out=$($py python/lws_torch.py "$dir/run-crown" 2>&1)
check "python/lws_torch.py CKPT prints the validation loss as JSON" \
    "$py -c 'import json, sys; o = json.loads(sys.argv[1]); assert o[\"tokens\"] == 1024, o' '$out'"
finish
