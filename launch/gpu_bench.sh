#!/usr/bin/env bash
# One table on one GPU, in under 8 minutes: HiFi-GAN V1 (batch 16 x 8192) and BigVGAN-v2 (batch 4 x 65536)
# in fp32 / bf16 / bf16 + torch.compile, each against the original code's training step, with
# audio-seconds per second, the ratio and peak GPU memory (distgan/bench/gpu_table.py says how).
# With --quality, a second command follows the table (which then gets 270 s instead of 450 s):
#   distgan bench precision --config configs/hifigan_v1.yaml --steps 150 --budget 170 data.batch_size=16
# HiFi-GAN V1 trained 150 steps in fp32 with three seeds and in bf16 with the first: per loss, bf16's
# gap to fp32 of the same seed beside the fp32 seed-to-seed spread, "within noise" or "outside noise"
# (distgan/bench/precision.py). Data: the shards in $QUALITY_SHARDS if set, else the built-in corpus.
#
# On a fresh machine that has torch: fill .whl/ here first with the wheels it lacks (launch/gpu_wheels.sh,
# about 41 MiB) and take .whl/ along; this script installs them into /tmp/site.
# Usage: launch/gpu_bench.sh [--dry-run] [--quality] [--models hifigan bigvgan] [--variants fp32 bf16 bf16+compile]
#   --dry-run: the same code at tiny shapes on the CPU (checks the script, measures nothing).
#   --quality: then bf16 against the fp32 seed-to-seed noise (above); with --dry-run, 2 tiny steps on the CPU.
set -euo pipefail
cd "$(dirname "$0")/.."
if compgen -G ".whl/*.whl" > /dev/null; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
  export PYTHONPATH="/tmp/site:$PWD"
else
  export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
fi
export PYTHONUNBUFFERED=1
quality=0 dry_run=0 table_args=()
for arg in "$@"; do
  case "$arg" in
    --quality) quality=1 ;;
    --dry-run) dry_run=1; table_args+=("$arg") ;;
    *) table_args+=("$arg") ;;
  esac
done
if [ "$quality" = 0 ]; then
  exec python3 -m distgan bench gpu "${table_args[@]}"
fi
python3 -m distgan bench gpu --budget 270 "${table_args[@]}"
if [ "$dry_run" = 1 ]; then
  exec python3 -m distgan bench precision --config configs/tiny.yaml --steps 2 --seeds 2 \
    data.batch_size=1 data.segment_samples=4096 data.num_workers=0
fi
exec python3 -m distgan bench precision --config configs/hifigan_v1.yaml --steps 150 --budget 170 \
  data.batch_size=16 ${QUALITY_SHARDS:+data.shards="$QUALITY_SHARDS"}
