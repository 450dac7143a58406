#!/usr/bin/env bash
# Parity with PyTorch: for a tiny config of each of the five variants (both
# block styles, tied and untied, both GQA policies, two micro-batches of
# accumulation), lws writes its initial weights, a random batch, the first
# step's gradients and the losses of 10 AdamW steps; tests/torch_reference.py
# recomputes all of it in float64 and compares: loss within 1e-5 relative,
# every gradient within 1e-4 relative L2, the 10 losses within 1e-3.
# LWS_PARITY_VARIANTS="crown ..." runs only those variants.
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
pass=0; fail=0
for variant in $variants; do
    cfg="$dir/$variant.json"
    # Small shapes keep lavapipe with validation fast; z_loss and a short
    # warmup exercise those paths.
    cat >"$cfg" <<JSON
{"extends": "$root/configs/tiny/$variant.json",
 "train": {"seq_len": 24, "micro_batch": 2, "grad_accum": 2, "steps": 10, "warmup_steps": 2,
           "lr": 1e-2, "z_loss": 1e-4, "out_dir": "$dir/run-$variant"}}
JSON
    if "$lws" train "$cfg" --parity-dump "$dir/$variant" --peak-tflops 1 >"$dir/$variant.log" 2>&1 &&
        /usr/bin/python3 tests/torch_reference.py parity "$dir/$variant" >"$dir/$variant.parity" 2>&1; then
        pass=$((pass+1)); echo "ok   parity $variant: $(tail -n 1 "$dir/$variant.parity")"
    else
        fail=$((fail+1)); echo "FAIL parity $variant"; cat "$dir/$variant.log"; cat "$dir/$variant.parity" 2>/dev/null
    fi
done
echo "$pass passed, $fail failed"
[ $fail -eq 0 ]
