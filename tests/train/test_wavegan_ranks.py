"""The WaveGAN family on two CPU processes: BatchNorm's running statistics end identical on every
rank under DDP and under DeepSpeed ZeRO-2 and ZeRO-3 (``dist.batchnorm``), and the ranks' weights agree."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from tests.train.helpers import REPO_ROOT, checkpoints, rank_state, run_distgan, train_args

WAVEGAN_TINY = REPO_ROOT / "configs" / "wavegan_tiny.yaml"
STEPS = 3


@pytest.mark.slow
@pytest.mark.parametrize(("launcher", "batchnorm"), [("torchrun", "local"), ("accelerate:cpu_zero2.yaml", "sync"),
                                                    ("accelerate:cpu_zero3.yaml", "local")])
def test_running_statistics_are_identical_on_every_rank(launcher: str, batchnorm: str, tmp_path: Path) -> None:
    run, dump = tmp_path / "run", tmp_path / "dump"
    done = run_distgan(train_args(run, f"train.max_steps={STEPS}", "data.batch_size=4", f"dist.batchnorm={batchnorm}",
                                  "data.synthetic.utterances=8", config=WAVEGAN_TINY),
                       launcher=launcher, script="running_stats_dump.py", STATE_DUMP=str(dump))
    stage = launcher[-6] if "zero" in launcher else None  # accelerate:cpu_zeroN.yaml
    assert (f"ZeRO-{stage}" if stage else "DDP") in done.stdout, done.stdout
    ranks = [torch.load(dump / f"rank-{rank}-step-{STEPS}.pt") for rank in (0, 1)]
    for model in ("generator", "discriminator"):
        stats = ranks[0][model]
        assert len(stats) == 3 * (5 if model == "generator" else 3), sorted(stats)
        for name, value in stats.items():
            assert torch.equal(value, ranks[1][model][name]), f"{model}.{name}"
            if name.endswith("num_batches_tracked"):
                # D's BatchNorm runs on real and on generated audio in separate calls in the D update,
                # then on generated audio in the G update (one generator forward serves both).
                assert int(value) == STEPS * (1 if model == "generator" else 3), f"{model}.{name}"
            elif name.endswith("running_mean"):
                assert value.abs().sum() > 0, f"{model}.{name} never moved"
    final = checkpoints(run)[-1]
    assert rank_state(final, 0)["weights"] == rank_state(final, 1)["weights"]
