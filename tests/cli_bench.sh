#!/usr/bin/env bash
# lws bench (training, peak, kernels), lws compare and lws plot on lavapipe
# with tiny configs, and bench/torch_reference.py on the CPU: every report is
# checked against the field table of docs/bench-report.md, compare takes lws
# and PyTorch reports side by side, a config too large for the device is
# refused with its memory plan, and the SVGs are well-formed with their
# legends.
source tests/lib.sh cli-bench "$1"
if ! /usr/bin/python3 -c "import torch" 2>/dev/null; then
    echo "FAIL: python3-torch is not installed (scripts/setup.sh installs it)"; exit 1
fi
export LWS_BIN="$lws"

# 1. The training benchmark: 2 x 32 tokens, one warm-up and two timed steps.
small="--micro-batch 2 --seq-len 32 --warmup 1 --steps 2"
"$lws" bench configs/tiny/crown.json $small --json "$dir/crown.json" >"$dir/crown.log" 2>&1
check "bench crown exits 0 and writes a report" '[ $? -eq 0 ] && [ -s "$dir/crown.json" ]'
check "bench prints the device, the schedule, tokens/s, MFU, per-layer and per-op times, memory" \
    'grep -q "^device: " "$dir/crown.log" && grep -q "q_heads  4 4 4 4 4 4" "$dir/crown.log" &&
     grep -q "tokens/s; step .* ms median (min" "$dir/crown.log" && grep -q "^MFU: " "$dir/crown.log" &&
     grep -q "^per layer" "$dir/crown.log" && grep -q "^  matmul " "$dir/crown.log" &&
     grep -q "^peak device memory" "$dir/crown.log"'
"$lws" bench configs/tiny/crown.json $small --peak-tflops 2.5 --label "lws again" \
    --json "$dir/crown2.json" >"$dir/crown2.log" 2>&1
check "bench with a datasheet peak reports a second MFU" '[ $? -eq 0 ] && grep -q "of the datasheet 2.5 TFLOP/s" "$dir/crown2.log"'
"$lws" bench configs/tiny/isotropic.json $small --no-op-profile --json "$dir/iso.json" >"$dir/iso.log" 2>&1
check "bench --no-op-profile leaves the per-op times out" '[ $? -eq 0 ] && ! grep -q "^per op" "$dir/iso.log"'

# 2. A paper config does not fit lavapipe's 2 GiB heap: refused, with the plan.
"$lws" bench configs/paper/crown-18l.json --steps 1 >"$dir/big.log" 2>&1
rc=$?
check "crown-18l at 8 x 1024 is refused with the memory plan and the reason" \
    '[ $rc -ne 0 ] && grep -q "activations" "$dir/big.log" && grep -q "GiB of device memory" "$dir/big.log" &&
     grep -q "AdamW moments alone need" "$dir/big.log"'

# 3. The matmul peak and the per-op kernels, with PyTorch's matmuls beside them.
"$lws" bench peak --repeat 1 --json "$dir/peak.json" >"$dir/peak.log" 2>&1
check "bench peak prints TFLOP/s and writes a report" '[ $? -eq 0 ] && grep -q "^peak: .* TFLOP/s fp32" "$dir/peak.log"'
# The peak is cached per device and driver: bench peak measures and writes
# it, bench and train read it (a value planted in the file shows that they
# do), and a file that is not a cache of this device is measured over.
cache="$dir/cache"
XDG_CACHE_HOME="$cache" "$lws" bench peak --repeat 1 >"$dir/peak1.log" 2>&1
cached=$(ls "$cache"/lws/peak-*.json 2>/dev/null | head -1)
check "bench peak writes the cache file it names" \
    '[ -s "$cached" ] && grep -q "^cached in $cached" "$dir/peak1.log"'
/usr/bin/python3 -c "
import json, sys
c = json.load(open(sys.argv[1])); c['tflops'] = 123.0; json.dump(c, open(sys.argv[1], 'w'))" "$cached"
XDG_CACHE_HOME="$cache" "$lws" bench configs/tiny/crown.json $small --no-op-profile >"$dir/cached.log" 2>&1
check "bench reads the cached peak, says when it was measured, and takes MFU against it" \
    '[ $? -eq 0 ] && grep -q "^peak: 123 TFLOP/s, cached, measured on 20" "$dir/cached.log" &&
     grep -q "of the measured 123 TFLOP/s" "$dir/cached.log"'
echo '{"tflops": "fast"' >"$cached"
XDG_CACHE_HOME="$cache" "$lws" bench configs/tiny/crown.json $small --no-op-profile >"$dir/recached.log" 2>&1
check "a broken cache file is measured over and rewritten" \
    '[ $? -eq 0 ] && grep -q "^peak: .*, measured now," "$dir/recached.log" &&
     /usr/bin/python3 -c "import json, sys; assert json.load(open(sys.argv[1]))[\"tflops\"] > 0" "$cached"'

"$lws" bench kernels configs/tiny/crown.json --micro-batch 2 --seq-len 32 --reps 2 --torch \
    --json "$dir/kernels.json" >"$dir/kernels.log" 2>&1
rc=$?
every_op() { # LOG OP...
    local log="$1"; shift
    for op in "$@"; do
        grep -q "^  $op " "$log" || { echo "  no $op line"; return 1; }
    done
}
check "bench kernels times every op, GFLOP/s and GB/s, with torch's matmul times" \
    '[ $rc -eq 0 ] && every_op "$dir/kernels.log" matmul attention attention_bwd rmsnorm rmsnorm_bwd \
        rmsnorm_add rmsnorm_rope rmsnorm_rope_bwd swiglu swiglu_bwd axpby embedding embedding_bwd \
        cross_entropy grad_norm adamw matmul_cat matmul_swiglu &&
     grep -q "torch ms" "$dir/kernels.log" && grep -q "OpenBLAS core" "$dir/kernels.log"'
# the pre-norm block without QK-norm: its fused residual norm, and RoPE alone
"$lws" bench kernels configs/tiny/framed.json --set model.qk_norm=false --micro-batch 2 \
    --seq-len 32 --reps 1 >"$dir/kernels-pre.log" 2>&1
rc=$?
check "bench kernels times the pre-norm block's ops" \
    '[ $rc -eq 0 ] && every_op "$dir/kernels-pre.log" add_rmsnorm rope rmsnorm rmsnorm_bwd'

"$lws" bench kernels configs/tiny/crown.json --set model.n_layers=3 --set=lws.variant=reverse \
    --print-config >"$dir/kernels-config.json" 2>&1
check "bench kernels --set and --print-config: the overridden config, nothing timed" \
    '[ $? -eq 0 ] && /usr/bin/python3 -c "
import json, sys
c = json.load(open(sys.argv[1]))
assert c[\"model\"][\"n_layers\"] == 3 and len(c[\"lws\"][\"ffn_dims\"]) == 3
" "$dir/kernels-config.json"'
"$lws" bench kernels configs/tiny/crown.json --set model.n_layers=x >"$dir/kernels-set.log" 2>&1
check "bench kernels refuses a bad --set with its path" \
    '[ $? -eq 1 ] && grep -q "set model.n_layers=x: expected an integer" "$dir/kernels-set.log"'

# 4. PyTorch on the CPU, same config and shape.
/usr/bin/python3 bench/torch_reference.py configs/tiny/crown.json $small --json "$dir/torch.json" \
    >"$dir/torch.log" 2>&1
check "bench/torch_reference.py writes a report for the tiny config" '[ $? -eq 0 ] && [ -s "$dir/torch.json" ]'

# 5. Every report against the documented schema, and their figures against each other.
/usr/bin/python3 - "$root/docs/bench-report.md" "$dir" >"$dir/schema.log" 2>&1 <<'PY'
import json, math, re, sys
doc, d = sys.argv[1], sys.argv[2]
rows = []
for line in open(doc):
    m = re.match(r"\|\s*`([^`]+)`\s*\|\s*([^|]+?)\s*\|\s*([^|]+?)\s*\|", line)
    if m:
        rows.append((m.group(1), m.group(2), [k.strip() for k in m.group(3).split(",")]))
assert len(rows) > 60, f"only {len(rows)} field rows found in {doc}"
def typed(v, t):
    ok = {"integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
          "number": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v),
          "string": lambda v: isinstance(v, str), "object": lambda v: isinstance(v, dict),
          "array": lambda v: isinstance(v, list), "boolean": lambda v: isinstance(v, bool)}
    kinds = [k.strip() for k in t.split(" or ")]
    return any(v is None if k == "null" else ok[k](v) for k in kinds)
def values(obj, path):
    """Every value at a path like layers[].forward_ms, or None where a parent is absent."""
    out = [obj]
    for part in path.split("."):
        nxt = []
        for o in out:
            key, each = (part[:-2], True) if part.endswith("[]") else (part, False)
            if not isinstance(o, dict) or key not in o:
                return None
            v = o[key]
            if each:
                if v is None:
                    continue
                nxt.extend(v)
            else:
                nxt.append(v)
        out = nxt
    return out
def check(name, report):
    errors, kind = [], report.get("kind")
    for path, t, req in rows:
        if "all" not in req and kind not in req:
            continue
        got = values(report, path)
        if got is None:
            errors.append(f"{path} missing")
        for v in got or []:
            if not typed(v, t):
                errors.append(f"{path} = {v!r} is not {t}")
    documented = {p.split(".")[0].split("[")[0] for p, _, _ in rows}
    errors += [f"top-level field {k} is not documented" for k in report if k not in documented]
    for e in errors:
        print(f"{name}: {e}")
    return not errors
reports = {n: json.load(open(f"{d}/{n}.json")) for n in ("crown", "crown2", "iso", "peak", "kernels", "torch")}
ok = all([check(n, r) for n, r in reports.items()])
c, t = reports["crown"], reports["torch"]
assert c["kind"] == "train" and reports["kernels"]["kind"] == "kernels" and reports["peak"]["kind"] == "peak"
th = c["throughput"]
assert abs(th["tokens_per_s"] - c["shape"]["tokens_per_step"] / (th["step_ms"]["median"] / 1e3)) < 1e-6 * th["tokens_per_s"]
mfu = th["tokens_per_s"] * c["config"]["train_flops_per_token"] / (c["peak"]["measured_tflops"] * 1e12)
assert abs(mfu - c["mfu"]["measured"]) < 1e-9 + 1e-6 * mfu, (mfu, c["mfu"])
assert len(c["layers"]) == c["config"]["n_layers"] == len(c["config"]["q_heads"])
assert reports["iso"]["ops"] is None and c["ops"] and abs(sum(o["fraction"] for o in c["ops"]) - 1) < 1e-6
assert reports["crown2"]["peak"]["datasheet_tflops"] == 2.5 and reports["crown2"]["mfu"]["datasheet"] > 0
# The PyTorch model is the same model: parameters and FLOPs per token agree.
for key in ("params", "train_flops_per_token", "q_heads", "kv_heads", "ffn_dims"):
    assert c["config"][key] == t["config"][key], (key, c["config"][key], t["config"][key])
assert math.isclose(c["loss"]["first"], math.log(256), rel_tol=0.05), c["loss"]
assert t["engine"]["name"] == "pytorch" and t["layers"] is None
assert any(k["torch_ms"] for k in reports["kernels"]["kernels"] if k["op"] == "matmul")
print("schema: 6 reports valid" if ok else "schema: invalid reports")
sys.exit(0 if ok else 1)
PY
check "all six reports follow docs/bench-report.md and agree with each other" '[ $? -eq 0 ]'
[ $fail -eq 0 ] || cat "$dir/schema.log"

# 6. compare: the table, Markdown and the chart.
out=$("$lws" compare "$dir/crown.json" "$dir/torch.json" "$dir/crown2.json" "$dir/iso.json" --svg "$dir/compare.svg" 2>&1); rc=$?
check "compare tables lws and PyTorch with ratios to the first" \
    '[ $rc -eq 0 ] && [[ "$out" == *"lws fp32"* && "$out" == *"PyTorch"* && "$out" == *" 1.00 "* && "$out" == *"differ in config"* ]]'
md=$("$lws" compare "$dir/crown.json" "$dir/torch.json" --markdown 2>&1); rc=$?
check "compare --markdown prints a table with each report's origin" \
    '[ $rc -eq 0 ] && [[ "$md" == *"|---|"* && "$md" == *"| 2 | PyTorch"* && "$md" == *"host load"* ]]'
svg_ok() { # svg_ok FILE WORD...: well-formed XML holding every word
    /usr/bin/python3 -c "
import sys, xml.etree.ElementTree as ET
text = ''.join(ET.parse(sys.argv[1]).getroot().itertext())
missing = [w for w in sys.argv[2:] if w not in text]
sys.exit(1 if missing else 0)" "$@"
}
check "compare --svg draws throughput bars and overlays every report's per-layer profile" \
    'svg_ok "$dir/compare.svg" "Training throughput" "Per-layer device time:" "1. lws fp32 (crown)" \
        "3. lws again (crown)" "4. lws fp32 (isotropic)" "one line per config" "PyTorch"'
"$lws" compare "$dir/crown.json" "$dir/crown2.json" --svg "$dir/compare1.svg" >/dev/null 2>&1
check "compare --svg of one config names it and draws its FLOPs shares once" \
    'svg_ok "$dir/compare1.svg" "Per-layer device time of crown" "2. lws again (crown)"'
msg=$("$lws" compare "$dir/kernels.json" 2>&1); rc=$?
check "compare refuses a kernels report, naming it" '[ $rc -ne 0 ] && [[ "$msg" == *"kernels.json"* && "$msg" == *"training reports"* ]]'
echo '{"lws_bench_version": 7, "kind": "train"}' >"$dir/future.json"
msg=$("$lws" compare "$dir/future.json" 2>&1); rc=$?
check "compare refuses another version" '[ $rc -ne 0 ] && [[ "$msg" == *"lws_bench_version 7"* ]]'
/usr/bin/python3 -c "import json; r = json.load(open('$dir/crown.json')); del r['throughput']['tokens_per_s']; json.dump(r, open('$dir/broken.json', 'w'))"
msg=$("$lws" compare "$dir/broken.json" 2>&1); rc=$?
check "compare names a missing field" '[ $rc -ne 0 ] && [[ "$msg" == *"throughput.tokens_per_s is missing"* ]]'

# 7. plot: two short training runs, their losses against tokens.
cat /usr/share/common-licenses/* >"$dir/corpus.txt"
"$lws" prepare --tokenizer bytes "$dir/corpus.txt" -o "$dir/data" --val-fraction 0.05 >"$dir/prepare.log" 2>&1
for lr in 5e-3 2e-3; do
    cat >"$dir/lr$lr.json" <<JSON
{"extends": "$root/configs/tiny/crown.json",
 "train": {"seq_len": 32, "micro_batch": 2, "steps": 8, "warmup_steps": 2, "lr": $lr,
           "checkpoint_every": 0, "out_dir": "$dir/runs/lr$lr"},
 "data": {"train": "$dir/data/train.tok", "val": "$dir/data/val.tok"},
 "eval": {"every": 4, "tokens": 256}}
JSON
    "$lws" train "$dir/lr$lr.json" --peak-tflops 1 --quiet >"$dir/train-$lr.log" 2>&1
done
check "two short training runs log losses" '[ -s "$dir/runs/lr5e-3/log.jsonl" ] && [ -s "$dir/runs/lr2e-3/log.jsonl" ]'
out=$("$lws" plot "$dir/runs/lr5e-3/log.jsonl" "$dir/runs/lr2e-3" --name "fast lr" --svg "$dir/loss.svg" 2>&1); rc=$?
check "plot names runs by --name and by their directory" \
    '[ $rc -eq 0 ] && [[ "$out" == *"fast lr:"*"8 steps"*"best validation loss"* && "$out" == *"lr2e-3:"* ]] &&
     svg_ok "$dir/loss.svg" "fast lr" "lr2e-3" "validation loss" "tokens"'
msg=$("$lws" plot "$dir/runs/lr5e-3" 2>&1); rc=$?
check "plot without --svg is a usage error" '[ $rc -eq 2 ] && [[ "$msg" == *"--svg"* ]]'
printf '{"step": 1, "tokens": 64, "loss": 5.5}\nnot json\n' >"$dir/bad.jsonl"
msg=$("$lws" plot "$dir/bad.jsonl" --svg "$dir/x.svg" 2>&1); rc=$?
check "plot refuses a file that is not a log, naming the line" '[ $rc -ne 0 ] && [[ "$msg" == *"bad.jsonl: line 2"* ]]'
msg=$("$lws" bench 2>&1); rc=$?
check "bench without a config is a usage error" '[ $rc -eq 2 ] && [[ "$msg" == *"no CONFIG"* ]]'
msg=$("$lws" bench configs/tiny/crown.json --steps 0 2>&1); rc=$?
want="--steps '0' is not allowed; use a whole number from 1 to 1000000"
check "bench --steps 0 is refused naming the range" '[ $rc -eq 2 ] && [[ "$msg" == *"$want"* ]]'
finish
