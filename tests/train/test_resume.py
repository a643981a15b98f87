"""A resumed run continues the same curve: N steps + resume + M steps == N+M straight, bit for bit.

On CPU everything that feeds a step is restored exactly: both models and AdamW states, the step
and data position (the stream replays the interrupted epoch up to the same batch, crops
included), and each rank's RNG states. So the comparison is exact equality, not a tolerance.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from tests.train.helpers import checkpoints, ddp_state, local_logs, run_distgan, train_args

# batch 4 over the synthetic corpus's 44 training clips: 11 batches an epoch, so the interrupted
# run stops mid-epoch (step 5) and the resumed one crosses into the next epoch.
SETTINGS = ["data.batch_size=4", "data.num_workers=1", "checkpoint.every_steps=5"]


@pytest.mark.slow
def test_resume_is_bit_identical_to_a_straight_run(tmp_path: Path) -> None:
    straight, resumed = tmp_path / "straight", tmp_path / "resumed"
    run_distgan(train_args(straight, "train.max_steps=14", *SETTINGS))
    run_distgan(train_args(resumed, "train.max_steps=5", *SETTINGS))
    second = run_distgan(train_args(resumed, "train.max_steps=14", *SETTINGS))
    assert "resumed from" in second.stdout and "step-00000005" in second.stdout

    final_a, final_b = checkpoints(straight)[-1], checkpoints(resumed)[-1]
    assert final_a.name == final_b.name == "step-00000014"
    for model in ("generator", "discriminator"):
        a, b = ddp_state(final_a, model), ddp_state(final_b, model)
        for key in a["model"]:
            assert torch.equal(a["model"][key], b["model"][key]), f"{model}.{key} differs"
        for index, state in a["optimizer"]["state"].items():
            assert torch.equal(state["exp_avg_sq"], b["optimizer"]["state"][index]["exp_avg_sq"])
    logs_a = {row["step"]: row for row in local_logs(straight)}
    logs_b = {row["step"]: row for row in local_logs(resumed)}
    for step in range(6, 15):
        assert logs_a[step]["g/total"] == logs_b[step]["g/total"], f"step {step}"
        assert logs_a[step]["d/total"] == logs_b[step]["d/total"], f"step {step}"
    trainer_state = torch.load(final_b / "trainer.pt", weights_only=False)["state"]
    assert (trainer_state["epoch"], trainer_state["batch_in_epoch"]) == (1, 3)
