"""Every model family on the launch modes, through the same code path: two processes train, write
a checkpoint, agree on their weights, and a new job resumes the checkpoint bit for bit.

Parametrized over families and modes: a new family adds a row to ``FAMILIES`` (its recipe, the
environment that registers it where it is not built in, overrides, and its launch modes) rather
than a test of its own. The
toy family lives in the test tree (``tests/families/toy``), so this also proves that a family
defined outside ``distgan/`` trains under DDP and DeepSpeed ZeRO-2 without any file of distgan's
knowing it.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch
import yaml

from distgan.checkpoint.ema import average_state_dict
from distgan.checkpoint.format import open_checkpoint
from distgan.families import get_family
from tests.families import toy
from tests.train.helpers import REPO_ROOT, checkpoints, local_logs, rank_state, run_distgan

TOY = {"DISTGAN_FAMILIES": "tests.families.toy", "PYTHONPATH": str(REPO_ROOT)}
# family: (recipe, environment, its spec, overrides: log every step; vocos, dac, encodec: half-length clips,
# batches of 2 and no DataLoader worker process, for CI time (what is compared is the same either way);
# the launch modes it runs: the toy proves the mechanism, a real family every mode)
SHORT = ("log.every_steps=1", "data.segment_samples=4096", "data.batch_size=2", "data.num_workers=0")
FAMILIES = {"toy": (REPO_ROOT / "tests" / "families" / "toy" / "toy.yaml", TOY, toy.SPEC, (), ("ddp", "zero2")),
            "vocos": (REPO_ROOT / "configs" / "vocos_tiny.yaml", {}, get_family("vocos"), SHORT,
                      ("ddp", "zero1", "zero2", "zero3")),
            "dac": (REPO_ROOT / "configs" / "dac_tiny.yaml", {}, get_family("dac"), SHORT,
                    ("ddp", "zero1", "zero2", "zero3")),
            "encodec": (REPO_ROOT / "configs" / "encodec_tiny.yaml", {}, get_family("encodec"), SHORT,
                        ("ddp", "zero1", "zero2", "zero3"))}
MODES = {"ddp": "accelerate:cpu_ddp.yaml", "zero1": "accelerate:cpu_zero1.yaml", "zero2": "accelerate:cpu_zero2.yaml",
         "zero3": "accelerate:cpu_zero3.yaml"}


def _train(config: Path, run: Path, mode: str, env: dict[str, str], *overrides: str):
    return run_distgan(["train", "--config", str(config), "--run-dir", str(run), *overrides],
                       launcher=MODES[mode], **env)


@pytest.mark.slow
@pytest.mark.parametrize(("family", "mode"), [(family, mode) for family, row in FAMILIES.items() for mode in row[4]])
def test_family_trains_checkpoints_and_resumes_bit_for_bit(family: str, mode: str, tmp_path: Path) -> None:
    config, env, spec, overrides, _ = FAMILIES[family]
    overrides = (*overrides, "train.ema_decay=0.9")  # and the model EMA, which changes nothing else
    straight, resumed = tmp_path / "straight", tmp_path / "resumed"
    done = _train(config, straight, mode, env, "train.max_steps=3", "checkpoint.every_steps=2", *overrides)
    assert done.stdout.count(" of 2 (local rank") == 2, done.stdout
    assert [c.name for c in checkpoints(straight)] == ["step-00000002", "step-00000003"]
    saved = yaml.safe_load((checkpoints(straight)[-1] / "config.yaml").read_text())
    assert saved["model"]["generator"]["family"] == family
    for checkpoint in checkpoints(straight):  # ranks agree at every checkpoint
        assert rank_state(checkpoint, 0)["weights"] == rank_state(checkpoint, 1)["weights"], checkpoint.name
    final = checkpoints(straight)[-1]

    shutil.copytree(checkpoints(straight)[0], resumed / "checkpoints" / "step-00000002")
    done = _train(config, resumed, mode, env, "train.max_steps=3", "checkpoint.every_steps=2", *overrides)
    assert "resumed from" in done.stdout
    for rank in (0, 1):
        before = {row["step"]: row for row in local_logs(straight, rank)}
        after = {row["step"]: row for row in local_logs(resumed, rank)}
        assert sorted(before) == [1, 2, 3] and sorted(after) == [3]
        for key in ("d/total", "g/total", "g/mel", "g/adv", *spec.extra_terms):
            assert after[3][key] == before[3][key], (rank, key)
    assert rank_state(checkpoints(resumed)[-1], 0)["weights"] == rank_state(final, 0)["weights"]
    ema = [average_state_dict(open_checkpoint(c)) for c in (final, checkpoints(resumed)[-1])]
    assert ema[0].keys() == ema[1].keys() and all(torch.equal(ema[1][name], value) for name, value in ema[0].items())
