#!/usr/bin/env bash
# Configures and builds dsflow in build/ (Release, Ninja). Re-running rebuilds only
# what changed. Extra arguments go to the CMake configure step.
set -euo pipefail
cd "$(dirname "$0")/.."
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release "$@"
cmake --build build
