#!/usr/bin/env bash
# One table on one GPU, in under 8 minutes: HiFi-GAN V1 (batch 16 x 8192) and BigVGAN-v2 (batch 4 x 65536)
# in fp32 / bf16 / bf16 + torch.compile, each against the original code's training step, with
# audio-seconds per second, the ratio and peak GPU memory (distgan/bench/gpu_table.py says how).
#
# On a fresh machine that has torch: fill .whl/ here first with the wheels it lacks (launch/gpu_wheels.sh,
# about 41 MiB) and take .whl/ along; this script installs them into /tmp/site.
# Usage: launch/gpu_bench.sh [--dry-run] [--models hifigan bigvgan] [--variants fp32 bf16 bf16+compile]
#   --dry-run: the same code at tiny shapes on the CPU (checks the script, measures nothing).
set -euo pipefail
cd "$(dirname "$0")/.."
if compgen -G ".whl/*.whl" > /dev/null; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
  export PYTHONPATH="/tmp/site:$PWD"
else
  export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
fi
export PYTHONUNBUFFERED=1
exec python3 -m distgan bench gpu "$@"
