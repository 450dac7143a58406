#!/usr/bin/env bash
# lws sweep end to end on a micro-sweep (two variants, two seeds, 12 steps of
# 4 x 32 tokens): results.json holds what `lws eval` gives for each run's
# last checkpoint, with means, seed spreads and paired differences that
# follow from the runs; a second start skips finished runs; a sweep killed
# with SIGKILL (the sweep alone, or with its run processes) and started
# again gives the results of an uninterrupted one, as does one on two
# devices at once; bad sweep files are refused naming the field; the charts,
# lws plot of a sweep directory, and --dry-run of the shipped sweep files.
source tests/lib.sh cli-sweep "$1"

cat /usr/share/common-licenses/* >"$dir/corpus.txt"
"$lws" prepare --tokenizer bytes "$dir/corpus.txt" -o "$dir/data" --val-fraction 0.05 >/dev/null 2>&1
# sweep_file FILE [JSON]: the micro-sweep over the tiny base, with the keys
# of the JSON object (if given) replacing its own (null removes one)
sweep_file() {
    $py - "$1" "${2:-{\}}" "$root" "$dir" <<'PY'
import json, sys
path, changes, root, d = sys.argv[1:]
sweep = {"name": "micro", "base": f"{root}/configs/tiny/shared/base.json",
         "set": {"train.seq_len": 32, "train.micro_batch": 4, "train.warmup_steps": 2,
                 "train.checkpoint_every": 3, "train.keep_checkpoints": 0, "eval.every": 6,
                 "data.train": f"{d}/data/train.tok", "data.val": f"{d}/data/val.tok"},
         "variants": [{"name": "iso-4l", "variant": "isotropic", "set": {"model.n_layers": 4}},
                      "crown"],
         "match": "iso-4l", "seeds": [1, 2], "tokens": 1536, "eval": {"tokens": 1024}}
sweep.update(json.loads(changes))
json.dump({k: v for k, v in sweep.items() if v is not None}, open(path, "w"), indent=1)
PY
}
sweep_file "$dir/micro.json"

# 1. The sweep, and lws eval of every run's last checkpoint.
"$lws" sweep "$dir/micro.json" --out "$dir/ref" >"$dir/ref.log" 2>&1
check "the micro-sweep runs to the end" '[ $? -eq 0 ] && grep -q "^4 of 4 runs done" "$dir/ref.log"'
check "the plan says that crown's heads do not vary at this size" \
    'grep -q "note: crown scales attention from 0.75 to 1.00 of d_model, but every layer rounds to 4 query heads" "$dir/ref.log"'
check "results.json, results.md, curves.svg, profiles.svg, and a result.json per run" \
    'for f in results.json results.md curves.svg profiles.svg sweep.json runs/iso-4l-s1/result.json \
         runs/iso-4l-s2/result.json runs/crown-s1/result.json runs/crown-s2/result.json; do
         [ -s "$dir/ref/$f" ] || exit 1; done'
for run in iso-4l-s1 iso-4l-s2 crown-s1 crown-s2; do
    "$lws" eval "$dir/ref/runs/$run" --json >"$dir/eval-$run.json" 2>"$dir/eval-$run.err"
done
$py - "$dir" <<'PY' >"$dir/values.log" 2>&1
import json, math, statistics, sys
d = sys.argv[1]
res = json.load(open(f"{d}/ref/results.json"))
runs = {r["name"]: r for r in res["runs"]}
for name, r in runs.items():
    e = json.load(open(f"{d}/eval-{name}.json"))
    # the training's final validation and lws eval: the same windows and
    # kernels, a model built for training against one for inference
    assert r["status"] == "done" and r["val_tokens"] == e["tokens"] == 1024, (name, r, e)
    assert abs(r["val_loss"] - e["loss"]) < 1e-6, (name, r["val_loss"], e["loss"])
    assert abs(r["val_bpb"] - e["bits_per_byte"]) < 1e-6 and abs(r["val_ppl"] - e["perplexity"]) < 1e-4
    assert r["steps"] == 12 and r["tokens"] == 1536 and r["params"] > r["non_embedding_params"] > 0
    assert r["tokens_per_s"] > 0 and r["wall_s"] > 0 and r["peak_memory_bytes"] > 0
    assert len(r["layer_fwd_ms"]) == len(r["q_heads"]) == len(r["ffn_dims"])
v = {x["name"]: x for x in res["variants"]}
for name in ("iso-4l", "crown"):
    vals = [runs[f"{name}-s{s}"]["val_bpb"] for s in (1, 2)]
    assert abs(v[name]["val_bpb"]["mean"] - statistics.mean(vals)) < 1e-12
    assert abs(v[name]["val_bpb"]["std"] - statistics.stdev(vals)) < 1e-12
assert v["iso-4l"]["vs_baseline"] is None and res["baseline"] == "iso-4l"
diffs = [runs[f"crown-s{s}"]["val_bpb"] - runs[f"iso-4l-s{s}"]["val_bpb"] for s in (1, 2)]
vs = v["crown"]["vs_baseline"]
assert abs(vs["diff_mean"] - statistics.mean(diffs)) < 1e-12 and abs(vs["diff_std"] - statistics.stdev(diffs)) < 1e-12
seed_sd = math.sqrt((v["crown"]["val_bpb"]["std"] ** 2 + v["iso-4l"]["val_bpb"]["std"] ** 2) / 2)
assert abs(vs["seed_std"] - seed_sd) < 1e-12 and vs["exceeds_seed_spread"] == (abs(vs["diff_mean"]) > seed_sd)
# budget matching: crown within 0.5% of iso-4l's parameters
assert abs(v["crown"]["params"] - v["iso-4l"]["params"]) <= 0.005 * v["iso-4l"]["params"]
print("values ok")
PY
rc=$?; cat "$dir/values.log" | sed 's/^/  /'
check "results.json: each run's numbers equal lws eval of its last checkpoint; means, spreads and paired differences follow" '[ $rc -eq 0 ]'
check "results.md tables the variants and the runs" \
    'grep -q "^| crown | 2 |" "$dir/ref/results.md" && grep -q "^| crown-s2 | crown | 2 |" "$dir/ref/results.md"'
svg_ok() { # svg_ok FILE WORD...: well-formed XML holding every word
    $py -c "
import sys, xml.etree.ElementTree as ET
text = ''.join(ET.parse(sys.argv[1]).getroot().itertext())
sys.exit(1 if [w for w in sys.argv[2:] if w not in text] else 0)" "$@"
}
check "curves.svg: one line per variant with its seeds, and the zoomed end" \
    'svg_ok "$dir/ref/curves.svg" "iso-4l (2 runs)" "crown (2 runs)" "the last 50% of training" "bits per byte"'
check "profiles.svg: FFN width, heads and measured time per layer of each variant" \
    'svg_ok "$dir/ref/profiles.svg" "FFN width" "query heads" "measured forward + backward time" "iso-4l" "crown"'

# 2. Started again: nothing to train, the same results.
cp "$dir/ref/results.json" "$dir/results-before.json"
"$lws" sweep "$dir/micro.json" --out "$dir/ref" >"$dir/again.log" 2>&1
check "a second start skips the finished runs" '[ $? -eq 0 ] && grep -q "^4 of 4 runs done; 0 to train" "$dir/again.log"'

same_results() { # same_results A B: equal but for the timings
    $py - "$1" "$2" <<'PY'
import json, sys
a, b = (json.load(open(p)) for p in sys.argv[1:])
timing = {"tokens_per_s", "step_ms", "wall_s", "layer_fwd_ms", "layer_bwd_ms", "finished", "timed_steps",
          "load_average", "run_dir", "checkpoint", "peak_memory_bytes", "evaluated_by", "device",
          "tokens_per_s_ratio", "wall_s_total", "load_average_range"}
def strip(o):
    if isinstance(o, dict): return {k: strip(v) for k, v in o.items() if k not in timing}
    if isinstance(o, list): return [strip(v) for v in o]
    return o
x, y = strip(a), strip(b)
if x != y:
    print("differ:", json.dumps(x)[:400], "\n       ", json.dumps(y)[:400]); sys.exit(1)
PY
}
check "the second start writes the same results" 'same_results "$dir/results-before.json" "$dir/ref/results.json"'

# 3. SIGKILL midway, then again: the results of the uninterrupted sweep. The
# sweep alone (its run process saves a checkpoint and stops), and the whole
# process group (the run resumes from its last periodic checkpoint).
wait_for_step() { # wait_for_step DIR RUN STEP: until RUN's log has STEP steps
    for _ in $(seq 3000); do
        local n=$(grep -c '"loss"' "$1/runs/$2/log.jsonl" 2>/dev/null)
        [ "${n:-0}" -ge "$3" ] && return 0
        sleep 0.1
    done
    return 1
}
for how in sweep group; do
    setsid "$lws" sweep "$dir/micro.json" --out "$dir/kill-$how" >"$dir/kill-$how.log" 2>&1 &
    pid=$!
    wait_for_step "$dir/kill-$how" iso-4l-s2 5
    if [ $how = sweep ]; then kill -KILL $pid; else kill -KILL -- -$pid; fi
    wait $pid 2>/dev/null
    sleep 1
    "$lws" sweep "$dir/micro.json" --out "$dir/kill-$how" >"$dir/resume-$how.log" 2>&1
    rc=$?
    check "killed ($how) in iso-4l-s2 and started again: it resumes that run from a checkpoint" \
        '[ $rc -eq 0 ] && grep -q "^1 of 4 runs done; 3 to train" "$dir/resume-$how.log" &&
         grep -q "^\[iso-4l-s2\] resumed at step" "$dir/resume-$how.log"'
    check "killed ($how) and started again: the results of the uninterrupted sweep" \
        'same_results "$dir/ref/results.json" "$dir/kill-$how/results.json"'
done

# 4. Two runs side by side (two contexts on lavapipe): the same results.
"$lws" sweep "$dir/micro.json" --out "$dir/two" --devices 0,0 --quiet >"$dir/two.log" 2>&1
check "--devices 0,0 trains two runs at once, with the same results" \
    '[ $? -eq 0 ] && grep -q "4 to train on 2 devices" "$dir/two.log" && same_results "$dir/ref/results.json" "$dir/two/results.json"'

# 5. A sweep file that no longer matches its runs is refused, naming the run.
sweep_file "$dir/changed.json"
sed -i 's/"train.warmup_steps": 2/"train.warmup_steps": 3/' "$dir/changed.json"
msg=$("$lws" sweep "$dir/changed.json" --out "$dir/ref" 2>&1); rc=$?
check "a changed sweep file over finished runs is refused, naming the run directory" \
    '[ $rc -ne 0 ] && [[ "$msg" == *"$dir/ref/runs/iso-4l-s1 holds a run of another config"* ]]'

# 6. Bad sweep files, each refused naming the field.
refused() { # refused WHAT CHANGES TEXT...: the sweep file with CHANGES (JSON) is refused
    local what="$1" changes="$2"; shift 2
    sweep_file "$dir/bad.json" "$changes"
    msg=$("$lws" sweep "$dir/bad.json" --out "$dir/bad" --dry-run 2>&1); rc=$?
    local ok=1
    for t in "$@"; do [[ "$msg" == *"$t"* ]] || ok=0; done
    check "refused: $what" '[ $rc -eq 1 ] && [ $ok -eq 1 ]'
    [ $ok -eq 1 ] || echo "  $msg"
}
refused "an unknown variant, naming it and the variants there are" '{"variants": ["iso", "crwn"]}' \
    'bad.json: variants[0]: "iso" is not a variant; use isotropic, vanilla, framed, reverse or crown'
refused "empty seeds" '{"seeds": []}' 'bad.json: seeds: an empty array'
refused "an override path that does not exist (grid)" '{"grid": {"train.lrr": [1e-3, 3e-3]}}' \
    'grid."train.lrr"[0]' 'unknown key' '"train.lr"'
refused "an override path that does not exist (a variant's set)" \
    '{"variants": ["crown", {"name": "x", "variant": "framed", "set": {"model.blok": "pre_norm"}}], "match": null}' \
    'variants[1] "x"' 'model.blok' 'unknown key'
refused "a budget no profile can match" '{"match": 1000}' \
    'match: a budget of 1000 parameters for variants[0] "iso-4l"' 'unreachable'
refused "a token budget that is not whole steps" '{"tokens": 1000}' \
    'tokens: 1000 is not a whole number of steps of 128 tokens' 'use 896 or 1024'
refused "a baseline that is not a variant" '{"baseline": "iso"}' 'baseline: "iso" is not one of the variants'
refused "an unknown key" '{"seed": [1]}' 'seed: unknown key' 'seeds'

# 7. lws plot of a sweep directory groups the seeds; --runs does not.
"$lws" plot "$dir/ref" --bpb --svg "$dir/plot.svg" >"$dir/plot.log" 2>&1
check "lws plot SWEEP_DIR: one group per variant, in bits per byte" \
    '[ $? -eq 0 ] && svg_ok "$dir/plot.svg" "iso-4l (2 runs)" "crown (2 runs)" "validation bits per byte"'
"$lws" plot "$dir/ref" --runs --zoom 0 --svg "$dir/plot-runs.svg" >/dev/null 2>&1
check "lws plot --runs: one line per run" \
    '[ $? -eq 0 ] && svg_ok "$dir/plot-runs.svg" "iso-4l-s1" "crown-s2" "training loss" && ! svg_ok "$dir/plot-runs.svg" "2 runs"'

# 8. The shipped sweep files resolve (paper.json without its data or a GPU).
out=$("$lws" sweep configs/sweeps/paper.json --dry-run 2>&1); rc=$?
check "--dry-run accepts configs/sweeps/paper.json: six variants, 13,000 steps, the paper's counts" \
    '[ $rc -eq 0 ] && [[ "$out" == *"6 variants x 1 grid point x 3 seeds = 18 runs"* && "$out" == *"13000 steps of 393216"* &&
      "$out" == *"isotropic-12l        12    181107456"* && "$out" == *"crown                18    181906688"* ]]'
out=$("$lws" sweep configs/sweeps/laptop.json --dry-run 2>&1); rc=$?
check "--dry-run accepts configs/sweeps/laptop.json; crown and vanilla vary their heads" \
    '[ $rc -eq 0 ] && grep -Eq "^  vanilla +6 .* 4 6 6 6 8 8 \|" <<<"$out" && grep -Eq "^  crown +6 .* 8 6 8 8 6 8 \|" <<<"$out"'
finish
