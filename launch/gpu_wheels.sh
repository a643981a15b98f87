#!/usr/bin/env bash
# Fill .whl/ with every wheel launch/gpu_bench.sh needs on a GPU machine that has only torch and its
# image's packages (see ../shared/tools/gpu-wheels.sh for what that image has), for Python 3.12:
# distgan's own (webdataset, soundfile, deepspeed, ... from the shared script, plus scipy, xxhash and
# nnAudio) and the original code's (bigvgan, and hifi-gan, which ships only as a source archive).
# librosa and matplotlib are not carried (with numba and llvmlite they alone pass the device's 64 MiB
# carry limit): distgan/bench/reference_imports.py stands in for the little of them the originals use.
# Usage, from the project root:  launch/gpu_wheels.sh   (then carry ".whl"; gpu_bench.sh installs it)
set -euo pipefail
cd "$(dirname "$0")/.."
shared="${DISTGAN_GPU_WHEELS:-../shared/tools/gpu-wheels.sh}"
bash "$shared" scipy xxhash nnAudio bigvgan > /dev/null
python3 -m pip wheel -q --no-deps -w .whl "hifi-gan==0.0.2"
size=$(du -sm .whl | cut -f1)
ls -1 .whl
echo "${size} MiB in .whl/"
if (( size > 64 )); then
  echo "more than the device's 64 MiB carry limit: remove wheels the GPU machine already has" >&2
  exit 1
fi
