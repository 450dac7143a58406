# The shell tests' common start, sourced as `source tests/lib.sh NAME "$1"`:
# lws is the binary under test, dir a fresh scratch directory
# ($LWS_TEST_DIR, else /tmp/lws-NAME), root the source tree, py the Python
# that has torch. `check WHAT CONDITION` counts a check; `finish` prints the
# counts and is the test's exit status.
set -uo pipefail
lws="$2"
dir="${LWS_TEST_DIR:-/tmp/lws-$1}"
rm -rf "$dir"; mkdir -p "$dir"
root="$(pwd)"
py=/usr/bin/python3
pass=0; fail=0
check() { if eval "$2"; then pass=$((pass+1)); echo "ok   $1"; else fail=$((fail+1)); echo "FAIL $1"; fi; }
finish() { echo "$pass passed, $fail failed"; [ $fail -eq 0 ]; }
