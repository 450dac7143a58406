#!/usr/bin/env bash
# lws devices: the table, --json, and the no-driver hint.
set -euo pipefail
lws="$1"
fail=0; pass=0
check() { if eval "$2"; then pass=$((pass+1)); echo "ok   $1"; else fail=$((fail+1)); echo "FAIL $1"; fi; }

out=$("$lws" devices)
check "devices lists a device" '[[ "$out" == *"device 0:"* && "$out" == *"subgroup size"* ]]'
check "devices names the matmul path" '[[ "$out" == *"matmul path       portable fp32"* && "$out" == *"matrix units"* ]]'
json=$("$lws" devices --json)
check "devices --json has the matmul path" 'echo "$json" | /usr/bin/python3 -c "import json,sys; d=json.load(sys.stdin); assert d[0][\"matmul_path\"] in (\"portable\", \"coopmat-nv\", \"coopmat-khr\") and d[0][\"matmul_path_detail\"]"'
check "devices names the attention form" '[[ "$out" == *"attention         row form: "* ]]'
check "devices says lavapipe never splits weight gradients over k" '[[ "$out" == *"weight gradients  never split over k"* ]]'
check "devices --json has the split over k" 'echo "$json" | /usr/bin/python3 -c "import json,sys; d=json.load(sys.stdin); assert d[0][\"matmul_split_k_max\"] == 1 and d[0][\"matmul_split_k_detail\"]"'
check "devices --json has the attention form" 'echo "$json" | /usr/bin/python3 -c "import json,sys; d=json.load(sys.stdin); assert d[0][\"attention_form\"] == \"row\" and d[0][\"attention_forward\"] == \"row\" and d[0][\"attention_form_detail\"]"'

check "devices --json is JSON with a name" 'echo "$json" | /usr/bin/python3 -c "import json,sys; d=json.load(sys.stdin); assert d[0][\"name\"] and d[0][\"subgroup_size\"] > 0"'
set +e
msg=$(VK_ICD_FILENAMES=/nonexistent VK_DRIVER_FILES=/nonexistent "$lws" devices 2>&1); rc=$?
set -e
check "no driver: non-zero exit" '[ $rc -ne 0 ]'
check "no driver: the hint names mesa-vulkan-drivers" '[[ "$msg" == *"install mesa-vulkan-drivers"* ]]'
set +e
msg=$("$lws" devices --bogus 2>&1); rc=$?
set -e
check "unknown option: exit 2 and names it" '[ $rc -eq 2 ] && [[ "$msg" == *"--bogus"* ]]'
echo "$pass passed, $fail failed"
[ $fail -eq 0 ]
