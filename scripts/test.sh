#!/usr/bin/env bash
# Installs what is missing, builds, and runs every test: first the Release
# build, then the AddressSanitizer + UBSan build of the host code, then the
# libFuzzer harnesses for about 12 s each (scripts/fuzz.sh). The clang build
# only has to compile (with -Werror, as every build): a second compiler's
# warnings; it is built without MPI, and a short benchmark checks that such
# an lws runs as one rank.
set -euo pipefail
cd "$(dirname "$0")/.."

jobs="${LWS_TEST_JOBS:-2}"
# Every recording checks its hazards (missing barriers, undeclared kernels).
export LWS_CHECK_HAZARDS=1

bash scripts/setup.sh release
bash scripts/setup.sh clang
build-clang/lws --version | grep -q "built without MPI"
build-clang/lws bench configs/tiny/crown.json --steps 1 --warmup 0 --no-op-profile >/dev/null
(cd build && ctest --output-on-failure -j"$jobs" "$@")
# Each vendor's kernel table on this device: parity and a short training run.
for tuning in nvidia amd intel generic; do bash scripts/tuning-check.sh build/lws "$tuning"; done

bash scripts/setup.sh asan
# detect_leaks=0: lavapipe (and LLVM inside it) keep allocations alive until
# process exit by design; leak reports would be about the driver, not lws.
export ASAN_OPTIONS="detect_leaks=0:abort_on_error=0"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
# The sanitizers check the host code: each test once (the runs at further
# subgroup sizes and vendor tables, label "variant", exercise the shaders),
# not the tests whose time goes to PyTorch (label "python"), and the parity
# dump for one variant in each precision rather than all five.
(cd build-asan && LWS_PARITY_VARIANTS=crown \
    ctest --output-on-failure -j"$jobs" -LE 'variant|python' "$@")

# The readers of untrusted files (configs, token files, safetensors, BPE
# vocabularies) under libFuzzer; any report fails the run.
bash scripts/fuzz.sh "${LWS_FUZZ_SECONDS:-12}"
