#!/usr/bin/env bash
# Parity with PyTorch: for a tiny config of each of the five variants (both
# block styles, tied and untied, both GQA policies, two micro-batches of
# accumulation), lws writes its initial weights, a random batch, the first
# step's gradients and the losses of 10 AdamW steps; tests/torch_reference.py
# recomputes all of it in float64 and compares: loss within 1e-5 relative,
# every gradient within 1e-4 relative L2, the 10 losses within 1e-3.
# Then each variant in train.precision bf16 and fp16 (at the tiny configs'
# own lr 3e-3; fp16 with a loss scale of 1024, which no step overflows),
# against the reference with torch.autocast bf16 / fp16 emulated at lws's
# 16-bit points: the 10 losses within 1e-2, the gradients within 5e-2 (bf16)
# and 1e-2 (fp16), and nearer that reference than the fp32 one (the
# tolerances and their reasons: tests/torch_reference.py, TOLERANCES).
# LWS_PARITY_VARIANTS="crown ..." runs only those variants,
# LWS_PARITY_PRECISIONS="fp32 ..." only those precisions.
set -uo pipefail
lws="$1"
dir="${LWS_TEST_DIR:-/tmp/lws-cli-parity}"
rm -rf "$dir"; mkdir -p "$dir"
root="$(pwd)"
if ! /usr/bin/python3 -c "import torch" 2>/dev/null; then
    echo "FAIL: python3-torch is not installed (scripts/setup.sh installs it)"; exit 1
fi
all="isotropic vanilla framed reverse crown"
variants="${LWS_PARITY_VARIANTS:-$all}"
for variant in $variants; do
    case " $all " in *" $variant "*) ;; *)
        echo "FAIL: LWS_PARITY_VARIANTS names '$variant'; allowed: $all"; exit 1;;
    esac
done
precisions="${LWS_PARITY_PRECISIONS:-fp32 bf16 fp16}"
pass=0; fail=0
for precision in $precisions; do
    case "$precision" in
        fp32) train='"lr": 1e-2' ;;
        bf16) train='"lr": 3e-3, "precision": "bf16"' ;;
        fp16) train='"lr": 3e-3, "precision": "fp16", "loss_scale": 1024' ;;
        *) echo "FAIL: LWS_PARITY_PRECISIONS names '$precision'; allowed: fp32 bf16 fp16"; exit 1 ;;
    esac
    for variant in $variants; do
        name="$variant-$precision"
        cfg="$dir/$name.json"
        # Small shapes keep lavapipe with validation fast; z_loss and a short
        # warmup exercise those paths.
        cat >"$cfg" <<JSON
{"extends": "$root/configs/tiny/$variant.json",
 "train": {"seq_len": 24, "micro_batch": 2, "grad_accum": 2, "steps": 10, "warmup_steps": 2,
           $train, "z_loss": 1e-4, "out_dir": "$dir/run-$name"}}
JSON
        if "$lws" train "$cfg" --parity-dump "$dir/$name" --peak-tflops 1 >"$dir/$name.log" 2>&1 &&
            /usr/bin/python3 tests/torch_reference.py parity "$dir/$name" >"$dir/$name.parity" 2>&1; then
            pass=$((pass+1)); echo "ok   parity $variant $precision: $(tail -n 1 "$dir/$name.parity")"
        else
            fail=$((fail+1)); echo "FAIL parity $variant $precision"; cat "$dir/$name.log"; cat "$dir/$name.parity" 2>/dev/null
        fi
    done
done
echo "$pass passed, $fail failed"
[ $fail -eq 0 ]
