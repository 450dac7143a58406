#!/usr/bin/env bash
# The GPU check: on a machine with an NVIDIA GPU, its Vulkan driver, the
# Vulkan loader (libvulkan1) and PyTorch with CUDA, and a prebuilt lws,
#   1. the kernel tests (tests/test_*.c marked `lws-test: vulkan`) on the
#      GPU's Vulkan device: subgroup size 32 instead of lavapipe's 4 and 8,
#      and the matrix-unit matmul (test_matmul_coopmat, skipped on lavapipe)
#      with the report of its check against the portable matmul at the
#      paper's shapes;
#   2. a short parity run: lws's first step and 10 AdamW steps of two tiny
#      configs (post-norm untied, pre-norm tied) against tests/torch_reference.py;
#   3. `lws bench` (fp32, then bf16: train.precision) and
#      bench/torch_reference.py (bf16 eager and
#      torch.compile, then fp32 eager while time remains) for
#      configs/paper/crown-18l.json and isotropic-12l.json at the largest
#      micro-batch up to 8 (the paper's) that fits;
#   4. the `lws compare` table of all reports, last.
# It stops starting new work when its 8-minute budget runs low, and says
# what it skipped.
#
#   scripts/gpu-check.sh [LWS_BINARY_OR_BUILD_DIR] [OUT_DIR]
#
# The first argument is the lws binary or the build directory holding it
# (default: build); the test executables are in its tests/ directory. OUT_DIR
# (default gpu-check-out) receives the logs, reports and compare.svg.
# Environment: LWS_PYTHON (a Python with torch and CUDA; default python3),
# LWS_DEVICE (the Vulkan device; default: the first NVIDIA one),
# GPU_CHECK_BUDGET (seconds, default 470), GPU_CHECK_SMOKE=1 (run the same
# steps on any device with the tiny configs and PyTorch on the CPU: a
# rehearsal of this script on a machine without a GPU).
set -uo pipefail
cd "$(dirname "$0")/.."
start=$(date +%s)
budget="${GPU_CHECK_BUDGET:-470}"
smoke="${GPU_CHECK_SMOKE:-0}"
arg="${1:-build}"
out="${2:-gpu-check-out}"
if [ -d "$arg" ]; then lws="$arg/lws"; tests_dir="$arg/tests"; else lws="$arg"; tests_dir="$(dirname "$arg")/tests"; fi
lws="$(cd "$(dirname "$lws")" && pwd)/$(basename "$lws")"
py="${LWS_PYTHON:-python3}"
mkdir -p "$out"
out="$(cd "$out" && pwd)"
summary=()
note() { summary+=("$1"); echo "== $1"; }
left() { echo $((budget - ($(date +%s) - start))); }
# A time limit for one command: n seconds, or what the budget has left.
cap() { local l=$(( $(left) - 15 )); [ "$l" -lt "$1" ] && echo $(( l > 5 ? l : 5 )) || echo "$1"; }
section() { echo; echo "=== $1 ($(left) s of the budget left)"; }

# ---- 0. the machine ----------------------------------------------------------
section "machine"
if [ ! -x "$lws" ]; then echo "gpu-check: no lws binary at $lws (build it, or pass its path)"; exit 2; fi
if ldd "$lws" 2>/dev/null | grep -q "not found"; then
    echo "gpu-check: $lws misses shared libraries:"; ldd "$lws" | grep "not found"
    echo "gpu-check: install them (libcjson1) or put them on LD_LIBRARY_PATH"; exit 2
fi
command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv
uptime
if ! "$lws" devices --json >"$out/devices.json" 2>"$out/devices.err"; then
    cat "$out/devices.err"; echo "gpu-check: lws sees no Vulkan device (is libvulkan1 and the NVIDIA Vulkan ICD installed?)"; exit 2
fi
if [ -z "${LWS_DEVICE:-}" ]; then
    LWS_DEVICE=$("$py" -c '
import json, sys
devices = json.load(open(sys.argv[1]))
nvidia = [d["index"] for d in devices if d["vendor"] == "NVIDIA"]
print(nvidia[0] if nvidia else (devices[0]["index"] if sys.argv[2] == "1" else ""))' "$out/devices.json" "$smoke" 2>/dev/null || true)
    if [ -z "$LWS_DEVICE" ]; then
        "$lws" devices; echo "gpu-check: no NVIDIA Vulkan device among these (GPU_CHECK_SMOKE=1 runs on any device)"; exit 2
    fi
fi
export LWS_DEVICE LWS_BIN="$lws"
# The kernel tests run with the validation layers where they are installed;
# the benchmarks never do.
if [ -z "${LWS_VALIDATION:-}" ]; then
    LWS_VALIDATION=0
    for d in /usr/share/vulkan/explicit_layer.d /etc/vulkan/explicit_layer.d; do
        [ -f "$d/VkLayer_khronos_validation.json" ] && LWS_VALIDATION=1
    done
fi
test_validation="$LWS_VALIDATION"
export LWS_VALIDATION=0
"$lws" devices | awk -v d="device $LWS_DEVICE:" 'index($0, d) == 1 {on = 1; print; next} /^device / {on = 0} on'
note "matmul path: $("$py" -c 'import json, sys; print([d for d in json.load(open(sys.argv[1])) if str(d["index"]) == sys.argv[2]][0]["matmul_path_detail"])' "$out/devices.json" "$LWS_DEVICE")"
device_name=$("$py" -c 'import json, sys; print([d for d in json.load(open(sys.argv[1])) if str(d["index"]) == sys.argv[2]][0]["name"])' "$out/devices.json" "$LWS_DEVICE")
torch_device=cuda
if [ "$smoke" = 1 ]; then
    torch_device=cpu
elif ! "$py" -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)" 2>/dev/null; then
    note "PyTorch with CUDA not found in $py (set LWS_PYTHON): PyTorch runs skipped"
    torch_device=none
fi
"$py" -c "import torch; print('PyTorch', torch.__version__, 'CUDA', torch.version.cuda, torch.cuda.get_device_name() if torch.cuda.is_available() else '')" 2>/dev/null

# Datasheet peaks (dense TFLOP/s: fp32 without tensor cores, bf16 with) for a
# second MFU; unknown GPUs get MFU against the measured peak only.
fp32_sheet=""; bf16_sheet=""
case "$device_name" in
    *H100*PCIe*) fp32_sheet=51.2; bf16_sheet=756 ;;
    *H100*|*H200*) fp32_sheet=66.9; bf16_sheet=989 ;;
    *A100*) fp32_sheet=19.5; bf16_sheet=312 ;;
    *L40S*) fp32_sheet=91.6; bf16_sheet=362 ;;
    *"RTX 4090"*) fp32_sheet=82.6; bf16_sheet=165 ;;
esac

# ---- 1. kernel tests on the GPU's Vulkan device --------------------------------
section "kernel tests on device $LWS_DEVICE ($device_name), validation layers $([ "$test_validation" = 1 ] && echo on || echo "off (not installed)")"
passed=0; failed=0; skipped=0
for src in tests/test_*.c; do
    name=$(basename "$src" .c)
    head -n 3 "$src" | grep -q "lws-test: vulkan" || continue
    if [ ! -x "$tests_dir/$name" ]; then echo "skip $name: no $tests_dir/$name"; skipped=$((skipped+1)); continue; fi
    if [ "$(left)" -lt 330 ]; then echo "skip $name: time"; skipped=$((skipped+1)); continue; fi
    t0=$(date +%s)
    LWS_VALIDATION="$test_validation" LWS_TEST_DIR="$out/tmp" timeout "$(cap 90)" "$tests_dir/$name" >"$out/$name.log" 2>&1
    rc=$?
    if [ $rc -eq 77 ]; then
        skipped=$((skipped+1)); echo "skip $name: $(grep -m1 '^skip' "$out/$name.log")"
    elif [ $rc -eq 0 ]; then
        passed=$((passed+1)); echo "ok   $name ($(( $(date +%s) - t0 )) s)"
        # The matrix units' check against the portable matmul, and the path.
        [ "$name" = test_matmul_coopmat ] && grep -E "^(matrix units|matmul path|ok   check|FAIL check)" "$out/$name.log"
    else
        failed=$((failed+1)); echo "FAIL $name ($(( $(date +%s) - t0 )) s):"; tail -n 15 "$out/$name.log"
    fi
done
note "kernel tests: $passed passed, $failed failed, $skipped skipped"

# ---- 2. parity with PyTorch --------------------------------------------------------
section "parity"
parity_ok=0; parity_bad=0
for variant in crown framed; do
    [ "$(left)" -lt 290 ] && { echo "skip parity $variant: time"; continue; }
    cat >"$out/parity-$variant.json" <<JSON
{"extends": "$PWD/configs/tiny/$variant.json",
 "train": {"seq_len": 24, "micro_batch": 2, "grad_accum": 2, "steps": 10, "warmup_steps": 2,
           "lr": 1e-2, "z_loss": 1e-4, "out_dir": "$out/parity-run-$variant"}}
JSON
    if timeout "$(cap 120)" "$lws" train "$out/parity-$variant.json" --parity-dump "$out/parity-$variant" --peak-tflops 1 \
            >"$out/parity-$variant.log" 2>&1 &&
        timeout "$(cap 120)" "$py" tests/torch_reference.py parity "$out/parity-$variant" >>"$out/parity-$variant.log" 2>&1; then
        parity_ok=$((parity_ok+1)); echo "ok   parity $variant: $(tail -n 1 "$out/parity-$variant.log")"
    else
        parity_bad=$((parity_bad+1)); echo "FAIL parity $variant:"; grep -E "FAIL|lws:|Error" "$out/parity-$variant.log" | head -n 20
    fi
done
note "parity: $parity_ok passed, $parity_bad failed"

# ---- 3. benchmarks -------------------------------------------------------------------
if [ "$smoke" = 1 ]; then configs="configs/tiny/crown.json configs/tiny/isotropic.json"; else
    configs="configs/paper/crown-18l.json configs/paper/isotropic-12l.json"; fi
steps=10
[ "$smoke" = 1 ] && steps=2
declare -A reports_of batch_of
for cfg in $configs; do
    name=$(basename "$cfg" .json)
    section "lws bench $name"
    if [ "$(left)" -lt 200 ]; then note "lws bench $name skipped: time"; continue; fi
    mb=8; [ "$smoke" = 1 ] && mb=4
    sheet=(); [ -n "$fp32_sheet" ] && sheet=(--peak-tflops "$fp32_sheet")
    for attempt in 1 2; do
        timeout "$(cap 150)" "$lws" bench "$cfg" --micro-batch "$mb" --warmup 2 --steps "$steps" "${sheet[@]}" \
            --json "$out/lws-$name.json" >"$out/lws-$name.log" 2>&1
        rc=$?
        fits=$(sed -n 's/.*--micro-batch \([0-9]*\) fits.*/\1/p' "$out/lws-$name.log" | head -n 1)
        [ $rc -ne 0 ] && [ -n "$fits" ] && [ $attempt -eq 1 ] && { echo "micro-batch $mb does not fit; $fits does"; mb=$fits; continue; }
        break
    done
    grep -E "^(shape|throughput|MFU|peak)" "$out/lws-$name.log"
    if [ $rc -eq 0 ]; then
        reports_of[$name]="$out/lws-$name.json"; batch_of[$name]=$mb
        note "lws bench $name at micro-batch $mb: ok"
    else
        note "lws bench $name: FAILED (exit $rc, $out/lws-$name.log)"; tail -n 8 "$out/lws-$name.log"
    fi
    # The same config in bf16 (16-bit activations and matmul operands).
    if [ $rc -eq 0 ] && [ "$(left)" -ge 200 ]; then
        timeout "$(cap 150)" "$lws" bench "$cfg" --micro-batch "$mb" --warmup 2 --steps "$steps" \
            "${sheet[@]}" --set train.precision=bf16 --json "$out/lws-bf16-$name.json" \
            >"$out/lws-bf16-$name.log" 2>&1
        if [ $? -eq 0 ]; then
            reports_of[$name]="${reports_of[$name]} $out/lws-bf16-$name.json"
            note "lws bench bf16 $name at micro-batch $mb: ok"
        else
            note "lws bench bf16 $name: FAILED ($out/lws-bf16-$name.log)"; tail -n 8 "$out/lws-bf16-$name.log"
        fi
    fi
done
# bf16 autocast eager and compiled (the usual PyTorch setup), then fp32 eager
# (the same arithmetic as lws) while time remains.
passes="bf16 fp32"; [ "$smoke" = 1 ] && passes="fp32"
[ "$torch_device" = none ] && passes=""
for pass in $passes; do
    for cfg in $configs; do
        name=$(basename "$cfg" .json)
        mb=${batch_of[$name]:-8}
        if [ "$pass" = bf16 ]; then need=150; args=(--precision bf16 --compile both); sheet_value="$bf16_sheet"
        else need=60; args=(--precision fp32 --compile off); sheet_value="$fp32_sheet"; fi
        section "PyTorch $pass $name"
        if [ "$(left)" -lt "$need" ]; then note "PyTorch $pass $name skipped: time"; continue; fi
        sheet=(); [ -n "$sheet_value" ] && sheet=(--peak-tflops "$sheet_value")
        report="$out/torch-$pass-$name.json"
        timeout "$(cap 400)" "$py" bench/torch_reference.py "$cfg" --device "$torch_device" \
            --micro-batch "$mb" --warmup 3 --steps "$steps" "${args[@]}" "${sheet[@]}" \
            --json "$report" >"$out/torch-$pass-$name.log" 2>&1
        rc=$?
        grep -E "tokens/s|^report" "$out/torch-$pass-$name.log"
        for r in "$report" "${report%.json}.compile.json"; do
            [ -s "$r" ] && reports_of[$name]="${reports_of[$name]:-} $r"
        done
        if [ $rc -eq 0 ]; then note "PyTorch $pass $name at micro-batch $mb: ok"
        else note "PyTorch $pass $name: exit $rc ($out/torch-$pass-$name.log)"; tail -n 8 "$out/torch-$pass-$name.log"; fi
    done
done

# ---- 4. the comparison ------------------------------------------------------------------
section "summary"
for line in "${summary[@]}"; do echo "  $line"; done
echo "  elapsed $(( $(date +%s) - start )) s; logs and reports in $out"
all=()
for cfg in $configs; do
    name=$(basename "$cfg" .json)
    [ -n "${reports_of[$name]:-}" ] || continue
    read -r -a these <<<"${reports_of[$name]}"
    all+=("${these[@]}")
    echo; echo "### $name on $device_name ($(date -u +%Y-%m-%d), load $(cut -d' ' -f1-3 /proc/loadavg))"; echo
    "$lws" compare "${these[@]}" --markdown --svg "$out/compare-$name.svg"
done
[ ${#all[@]} -gt 0 ] && "$lws" compare "${all[@]}" --svg "$out/compare.svg" >/dev/null
[ $failed -eq 0 ] && [ $parity_bad -eq 0 ] && [ ${#all[@]} -gt 0 ]
