#!/usr/bin/env bash
# lws schedule: the paper's six totals, --json, --svg, --set, --print-config and config errors.
set -euo pipefail
lws="$1"
tmp="${LWS_TEST_DIR:-/tmp/lws_cli_schedule}"
mkdir -p "$tmp"
fail=0; pass=0
check() { if eval "$2"; then pass=$((pass+1)); echo "ok   $1"; else fail=$((fail+1)); echo "FAIL $1"; fi; }

paper=(configs/paper/isotropic-12l.json configs/paper/isotropic-18l.json
       configs/paper/vanilla-18l.json configs/paper/framed-18l.json
       configs/paper/reverse-18l.json configs/paper/crown-18l.json)
out=$("$lws" schedule configs/paper/*.json --svg "$tmp/paper.svg")
for total in 181,107,456 183,477,504 179,742,976 179,350,272 181,906,688; do
  check "paper totals: $total" '[[ "$out" == *"parameters               $total"* ]]'
done
check "framed and reverse both print 179,350,272" \
  '[ $(grep -c "parameters               179,350,272" <<<"$out") -eq 2 ]'
check "crown layer 8: 12 heads, 4 KV heads, FFN 2816" \
  'grep -qE "^ +8 +1\.0000 +3\.8000 +12 +4 +2816 " <<<"$out"'
check "table has training FLOPs and embeddings" \
  '[[ "$out" == *"training FLOPs/token"* && "$out" == *"without embeddings     104,639,744"* ]]'
check "comparison lists all six" '[ $(sed -n "/^comparison/,\$p" <<<"$out" | grep -c "18 \|12 ") -eq 6 ]'

json=$("$lws" schedule --json "${paper[@]}")
check "--json parses, six configs, crown's lists and totals" 'echo "$json" | /usr/bin/python3 -c "
import json, sys
d = json.load(sys.stdin)[\"configs\"]
assert [c[\"totals\"][\"params\"] for c in d] == [181107456, 183477504, 179742976, 179350272, 179350272, 181906688]
crown = d[5][\"layers\"]
assert [l[\"ffn_dim\"] for l in crown] == [3072,768,1024,1280,1536,2048,2304,2560,2816,2816,2560,2304,2048,1536,1280,1024,768,3072]
assert [l[\"q_heads\"] for l in crown] == [12,9,9,9,9,9,12,12,12,12,12,12,9,9,9,9,9,12]
assert all(l[\"kv_heads\"] * 3 == l[\"q_heads\"] for l in crown)
assert d[0][\"totals\"][\"train_flops_per_token\"] > 6 * 181107456 - 6 * 50304 * 768
"'

check "--svg wrote an SVG naming every config" '/usr/bin/python3 -c "
import sys, xml.etree.ElementTree as ET
root = ET.parse(\"$tmp/paper.svg\").getroot()
ns = \"{http://www.w3.org/2000/svg}\"
texts = [t.text for t in root.iter(ns + \"text\")]
for n in [\"isotropic-12l\", \"isotropic-18l\", \"vanilla-18l\", \"framed-18l\", \"reverse-18l\", \"crown-18l\"]:
    assert texts.count(n) == 2, n  # one label per panel
assert len(list(root.iter(ns + \"polyline\"))) == 12
"'

tiny=$("$lws" schedule configs/tiny/*.json)
# every tiny config but isotropic.json matches isotropic's budget
check "tiny configs load and report their budget match" \
  '[ $(grep -c "budget match" <<<"$tiny") -eq $(( $(ls configs/tiny/*.json | wc -l) - 1 )) ]'
seq=$("$lws" schedule --seq-len 2048 configs/paper/crown-18l.json)
check "--seq-len changes the attention term" '[[ "$seq" == *"(seq_len 2048)"* ]]'

# --set overrides after extends, typed by the schema; --print-config shows the result.
set8=$("$lws" schedule configs/tiny/crown.json --set model.n_layers=8)
check "--set model.n_layers=8 gives 8 layers" \
  '[[ "$set8" == *", 8 layers,"* ]] && grep -qE "^ +7 +[0-9.]+ +[0-9.]+ +4 +2 +" <<<"$set8" &&
   ! grep -qE "^ +8 +[0-9.]+ " <<<"$set8"'
setv=$("$lws" schedule --set=lws.variant=vanilla configs/tiny/crown.json configs/tiny/framed.json)
check "--set=PATH=VALUE applies to every CONFIG" \
  '[ $(grep -c "profile  vanilla: beta 1 -> 4, alpha 0.5 -> 1;" <<<"$setv") -eq 2 ]'
printed=$("$lws" schedule configs/tiny/crown.json --set model.n_layers=8 --set train.lr=2e-4 \
  --set data.train=runs/x.tok --print-config)
check "--print-config prints the overridden values as a config that loads again" \
  'echo "$printed" | /usr/bin/python3 -c "
import json, sys
c = json.load(sys.stdin)
assert c[\"model\"][\"n_layers\"] == 8 and len(c[\"lws\"][\"ffn_dims\"]) == 8
assert c[\"train\"][\"lr\"] == 2e-4 and c[\"data\"][\"train\"] == \"runs/x.tok\"
" && echo "$printed" >"$tmp/printed.json" && "$lws" schedule "$tmp/printed.json" | grep -q ", 8 layers,"'

# Errors: non-zero exit and a message naming the file, the path and the value.
err() {  # name, expected rc, needle..., -- args
  local name="$1" want="$2"; shift 2
  local needles=(); while [ "$1" != "--" ]; do needles+=("$1"); shift; done; shift
  set +e; msg=$("$lws" schedule "$@" 2>&1); rc=$?; set -e
  local ok=1
  [ $rc -eq "$want" ] || ok=0
  for n in "${needles[@]}"; do [[ "$msg" == *"$n"* ]] || ok=0; done
  local first="${msg%%$'\n'*}"
  check "$name (rc $rc): ${first:0:110}" '[ $ok -eq 1 ]'
}
err "typo key" 1 "tests/configs/typo.json" "lws.ffn_point" "did you mean \"ffn_points\"" -- tests/configs/typo.json
err "malformed JSON" 1 "tests/configs/malformed.json" "line 5, column 5" -- tests/configs/malformed.json
err "extends cycle" 1 "extends" "cycle" -- tests/configs/cycle_a.json
err "unreachable match" 1 "lws.match_params" "unreachable" -- tests/configs/unreachable.json
err "base's bad value names the base" 1 "tests/configs/bad_base.json" "model.d_model" '"64"' -- tests/configs/bad_child.json
err "missing file" 1 "does_not_exist.json" "cannot open" -- tests/configs/does_not_exist.json
err "one bad among good" 1 "tests/configs/typo.json" -- configs/paper/crown-18l.json tests/configs/typo.json
err "no config" 2 "give at least one config" --
err "unknown option" 2 "--bogus" -- --bogus configs/paper/crown-18l.json
err "bad --seq-len" 2 "--seq-len" -- --seq-len 0 configs/paper/crown-18l.json
err "--set unknown key" 1 "--set train.lrr" "did you mean \"train.lr\"" -- configs/tiny/crown.json --set train.lrr=1
err "--set wrong type" 1 "--set train.steps=ten" "expected an integer" -- configs/tiny/crown.json --set train.steps=ten
err "--set out of range" 1 "--set: train.lr" "value -1" "> 0" -- --set train.lr=-1 configs/tiny/crown.json
err "--set without a value" 2 "--set needs PATH=VALUE" -- configs/tiny/crown.json --set
err "unwritable svg" 1 "/nonexistent/dir/x.svg" -- --svg /nonexistent/dir/x.svg configs/paper/crown-18l.json

echo "$pass passed, $fail failed"
[ $fail -eq 0 ]
