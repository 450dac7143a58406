#!/usr/bin/env bash
# Installs and builds lws, then shows the Vulkan devices it can use.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh release
./build/lws devices
