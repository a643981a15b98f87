"""fp16 under DeepSpeed ZeRO-2 on two CPU processes: it trains where the CPU has fp16 kernels.

DeepSpeed's CPU accelerator offers fp16 only when oneDNN has fp16 kernels for this CPU
(``torch.ops.mkldnn._is_mkldnn_fp16_supported()``: AVX512-FP16 / AMX-FP16, e.g. Xeon Sapphire
Rapids); elsewhere it stops at start with "Type fp16 is not supported on your device". Both
halves are checked: which one runs depends on the machine, and docs/training.md says so.
"""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

from tests.train.helpers import local_logs, run_distgan, train_args


def _fp16_kernels() -> bool:
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_fp16_supported())
    except (AttributeError, RuntimeError):
        return False


@pytest.mark.slow
def test_zero2_fp16_on_cpu_trains_where_the_cpu_has_fp16_kernels(tmp_path: Path) -> None:
    done = run_distgan(train_args(tmp_path, "train.precision=fp16", "train.max_steps=3"),
                       launcher="accelerate:cpu_zero2.yaml", check=False, timeout=600)
    if not _fp16_kernels():
        assert done.returncode != 0 and "Type fp16 is not supported on your device" in done.stderr
        return
    assert done.returncode == 0, done.stderr[-3000:]
    rows = local_logs(tmp_path)
    assert [row["step"] for row in rows] == [1, 2, 3]
    assert all(math.isfinite(row["g/mel"]) for row in rows) and rows[-1]["loss_scale/g"] > 1
