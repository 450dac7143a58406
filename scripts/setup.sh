#!/usr/bin/env bash
# Installs what lws needs from Debian's packages (only what is missing), then
# configures and builds it with CMake.
#   scripts/setup.sh            Release build in build/
#   scripts/setup.sh asan       AddressSanitizer + UBSan build in build-asan/
#   scripts/setup.sh clang      Release build with clang in build-clang/ (the
#                               code must compile warning-free with both),
#                               without MPI (LWS_MPI=OFF: one rank per run)
set -euo pipefail
cd "$(dirname "$0")/.."

# Build: compilers (gcc; clang for a second compiler's warnings, and with
# compiler-rt for the libFuzzer harnesses of scripts/fuzz.sh), CMake,
# Vulkan headers and loader, volk, the GLSL compiler, cJSON. Run: lavapipe
# (the CPU Vulkan driver). Tests: validation layers, SPIR-V tools, PyTorch
# (the parity reference) with OpenBLAS, rsvg-convert (plots rendered in
# tests). Data parallelism: Open MPI (mpirun and the library). Quick start:
# the King James Bible text.
packages=(
    gcc clang libclang-rt-dev make cmake pkg-config
    libvulkan-dev libvulkan1 libvulkan-volk-dev glslang-tools libcjson-dev
    mesa-vulkan-drivers vulkan-validationlayers spirv-tools
    python3 python3-torch libopenblas0-pthread librsvg2-bin
    libopenmpi-dev openmpi-bin
    bible-kjv
)

# Node.js runs the reference GPT-2 encoder (npm's gpt-3-encoder) that the
# tokenizer test compares against; a machine that already has node (from
# NodeSource, say) keeps it, since Debian's npm conflicts with that package.
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
    packages+=(nodejs npm)
fi

missing=()
for p in "${packages[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
        missing+=("$p")
    fi
done
if ((${#missing[@]})); then
    echo "setup: installing ${missing[*]}"
    sudo=""
    if [ "$(id -u)" != 0 ]; then
        command -v sudo >/dev/null || { echo "setup: need root or sudo to install: ${missing[*]}" >&2; exit 1; }
        sudo="sudo"
    fi
    export DEBIAN_FRONTEND=noninteractive
    $sudo apt-get update -qq
    $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

kind="${1:-release}"
case "$kind" in
    release) dir=build type=Release ;;
    asan) dir=build-asan type=Asan ;;
    clang) dir=build-clang type=Release extra=-DLWS_MPI=OFF ;;
    *) echo "setup: unknown build kind '$kind' (release, asan or clang)" >&2; exit 2 ;;
esac
log="$dir/build.log"
mkdir -p "$dir"
if [ "$kind" = clang ]; then
    export CC=clang
    # CMake keeps the compiler a directory was first configured with.
    if [ -f "$dir/CMakeCache.txt" ] && ! grep -q '^CMAKE_C_COMPILER:.*clang' "$dir/CMakeCache.txt"; then
        rm -rf "$dir/CMakeCache.txt" "$dir/CMakeFiles"
    fi
fi
if ! { cmake -S . -B "$dir" -DCMAKE_BUILD_TYPE="$type" ${extra:-} && cmake --build "$dir" -j"$(nproc)"; } >"$log" 2>&1; then
    tail -n 60 "$log" >&2
    echo "setup: the $kind build ($type) failed (full log: $log)" >&2
    exit 1
fi
echo "setup: built $dir/lws ($kind build)"
