#!/usr/bin/env bash
# Builds the libFuzzer harnesses of tests/fuzz with clang (AddressSanitizer,
# UBSan) in build-fuzz/ and runs each for a bounded time over its seed corpus
# (tests/fuzz/corpus/NAME/, read only; what a run adds goes to
# build-fuzz/corpus/NAME/). Fails on any report: a crash, a sanitizer
# finding, a leak, a timeout or an input over the memory limit.
#   scripts/fuzz.sh [SECONDS]   seconds per harness (default 20)
set -euo pipefail
cd "$(dirname "$0")/.."

seconds="${1:-20}"
dir=build-fuzz
mkdir -p "$dir"
if ! { CC=clang cmake -S . -B "$dir" -DCMAKE_BUILD_TYPE=Fuzz -DLWS_FUZZ=ON &&
       cmake --build "$dir" -j"$(nproc)" --target fuzz_config fuzz_tokens fuzz_safetensors fuzz_bpe; } \
       >"$dir/build.log" 2>&1; then
    tail -n 40 "$dir/build.log" >&2
    echo "fuzz: the build failed (full log: $dir/build.log)" >&2
    exit 1
fi

export ASAN_OPTIONS="detect_leaks=1:abort_on_error=1"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
failed=0
for name in config tokens safetensors bpe; do
    corpus="$dir/corpus/$name"
    mkdir -p "$corpus" "$dir/crashes/$name"
    start=$(date +%s)
    if "$dir/tests/fuzz/fuzz_$name" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
        -max_len=65536 -artifact_prefix="$dir/crashes/$name/" -print_final_stats=1 \
        "$corpus" "tests/fuzz/corpus/$name" >"$dir/fuzz_$name.log" 2>&1; then
        runs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$dir/fuzz_$name.log" | grep -o '[0-9]*$')
        echo "fuzz: $name: ${runs:-?} inputs in $(($(date +%s) - start)) s, no report"
    else
        failed=1
        tail -n 40 "$dir/fuzz_$name.log" >&2
        echo "fuzz: $name: a report (log: $dir/fuzz_$name.log, input: $dir/crashes/$name/)" >&2
    fi
done
exit $failed
