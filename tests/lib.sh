# The shell tests' common start, sourced as `source tests/lib.sh NAME "$1"`:
# lws is the binary under test, dir a fresh scratch directory
# ($LWS_TEST_DIR, else /tmp/lws-NAME), root the source tree, py the Python
# that has torch. `check WHAT CONDITION` counts a check; `finish` prints the
# counts and is the test's exit status. `same_tensors A B` compares the
# tensors of two safetensors files (not their metadata, which names the run).
set -uo pipefail
lws="$2"
dir="${LWS_TEST_DIR:-/tmp/lws-$1}"
rm -rf "$dir"; mkdir -p "$dir"
root="$(pwd)"
py=/usr/bin/python3
pass=0; fail=0
check() { if eval "$2"; then pass=$((pass+1)); echo "ok   $1"; else fail=$((fail+1)); echo "FAIL $1"; fi; }
finish() { echo "$pass passed, $fail failed"; [ $fail -eq 0 ]; }
same_tensors() { # the data sections of two safetensors files (their metadata name the run dirs)
    /usr/bin/python3 - "$1" "$2" <<'PY'
import json, struct, sys
def load(path):
    b = open(path, "rb").read()
    n = struct.unpack("<Q", b[:8])[0]
    h = json.loads(b[8:8 + n]); h.pop("__metadata__", None)
    return h, b[8 + n:]
(ha, da), (hb, db) = load(sys.argv[1]), load(sys.argv[2])
sys.exit(0 if ha == hb and da == db else 1)
PY
}
