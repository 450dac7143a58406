#!/usr/bin/env bash
# The quick start: installs and builds lws, prepares the King James Bible
# (Debian's bible-kjv) as byte-level tokens, trains the tiny Crown model on
# the first Vulkan device (lavapipe when there is no GPU), and samples text.
#   scripts/quickstart.sh [CONFIG]    (default configs/tiny/crown.json)
set -euo pipefail
cd "$(dirname "$0")/.."
config="${1:-configs/tiny/crown.json}"

bash scripts/setup.sh release
./build/lws devices | head -n 4

data=data/bible
if [ ! -s "$data/train.tok" ] || [ ! -s "$data/val.tok" ]; then
    mkdir -p "$data"
    bible Gen1:1-Rev22:21 >"$data/bible.txt"
    ./build/lws prepare --tokenizer bytes "$data/bible.txt" -o "$data"
fi

./build/lws train "$config" --out runs/quickstart
echo
echo "--- sampled from runs/quickstart (temperature 0.8) ---"
./build/lws sample runs/quickstart --prompt "And God said" --tokens 300 --temperature 0.8
