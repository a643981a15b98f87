"""DeepSpeed ZeRO-1/2/3 for both models on two CPU processes, against plain DDP.

Each launch mode trains the same 4 tiny steps once (module fixtures); the tests read what the runs
left: per-rank ZeRO optimizer shards, weight fingerprints, per-rank losses, checkpoints, exports.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
from deepspeed.utils.zero_to_fp32 import get_fp32_state_dict_from_zero_checkpoint

from distgan.checkpoint.ema import FULL, average_state_dict, partition_file
from distgan.checkpoint.files import UnsafeCheckpointFile, deepspeed_records, weights_only_loads
from distgan.checkpoint.format import IncompleteCheckpoint, open_checkpoint
from distgan.checkpoint.weights import read_export
from distgan.config import ConfigError, load_config
from distgan.families.hifigan.generator import HiFiGANGenerator
from distgan.inference.export import export_generator
from distgan.inference.load import load_generator
from distgan.models.discriminators import Discriminators
from distgan.train.deepspeed_engine import fill_deepspeed_config
from tests.train.helpers import (
    LAUNCH,
    REPO_ROOT,
    TINY,
    checkpoints,
    local_logs,
    poison,
    rank_state,
    rewrite_manifest,
    run_distgan,
    train_args,
)

# With the model EMA, which changes nothing else (decay 0.9: four steps leave it well apart from the weights).
STEPS = ["train.max_steps=4", "checkpoint.every_steps=2", "checkpoint.keep_last=5", "train.ema_decay=0.9"]
MODES = {"ddp": "cpu_ddp.yaml", "zero1": "cpu_zero1.yaml", "zero2": "cpu_zero2.yaml", "zero3": "cpu_zero3.yaml"}
ZERO = ["zero1", "zero2", "zero3"]


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """One 4-step run per launch mode, checkpoints at steps 2 and 4 (and the whole state at each,
    tests/train/scripts_cluster/state_dump.py); after them, in the same processes, the check that
    each half of the GAN step updates only its own model (scripts_cluster/frozen_check.py)."""
    out = {}
    for mode, launch in MODES.items():
        out[mode] = tmp_path_factory.mktemp(mode)
        # DDP with the AdamW arithmetic DeepSpeed's engines use (not fused), so that the runs differ
        # only in how gradients are summed.
        same_adamw = ["perf.optimizer_impl=plain"] if mode == "ddp" else []
        run_distgan(train_args(out[mode], *STEPS, *same_adamw), launcher=f"accelerate:{launch}", script="state_dump.py",
                    STATE_DUMP=str(out[mode] / "dumps"), FROZEN_CHECK=str(out[mode] / "frozen"))
    return out


def parameter_count(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def partition_sizes(folder: Path) -> list[int]:
    """fp32 master elements held by each rank's ZeRO optimizer shard of one engine."""
    sizes = []
    for rank in (0, 1):
        (path,) = folder.glob(f"*zero_pp_rank_{rank}_*optim_states.pt")
        state = torch.load(path, map_location="cpu", weights_only=False)["optimizer_state_dict"]
        flat = state.get("single_partition_of_fp32_groups") or state["fp32_flat_groups"]
        sizes.append(sum(t.numel() for t in flat))
    return sizes


@pytest.mark.slow
@pytest.mark.parametrize("mode", ZERO)
def test_each_rank_holds_half_of_the_optimizer_state(runs: dict[str, Path], mode: str) -> None:
    cfg = load_config(TINY)
    final = checkpoints(runs[mode])[-1]
    for engine, model in (("generator", HiFiGANGenerator(cfg.model.generator, cfg.audio.n_mels)),
                          ("discriminator", Discriminators(cfg.model.discriminator))):
        total = parameter_count(model)
        sizes = partition_sizes(final / engine / "zero")
        # Each rank owns a contiguous half of the flattened parameters, padded for alignment.
        assert sum(sizes) >= total
        for size in sizes:
            assert abs(size - total / 2) <= 0.01 * total, (engine, sizes, total)


@pytest.mark.slow
@pytest.mark.parametrize("mode", [*ZERO, "ddp"])
def test_both_ranks_end_with_identical_weights(runs: dict[str, Path], mode: str) -> None:
    final = checkpoints(runs[mode])[-1]
    fingerprints = [rank_state(final, rank)["weights"] for rank in (0, 1)]
    assert fingerprints[0] == fingerprints[1]
    assert json.loads((final / "COMPLETE").read_text())["deepspeed_stage"] == (None if mode == "ddp" else int(mode[-1]))


@pytest.mark.slow
@pytest.mark.parametrize("mode", ZERO)
def test_losses_match_the_ddp_run(runs: dict[str, Path], mode: str) -> None:
    # Same seed, so the same initial weights and the same batches on each rank; the same AdamW
    # arithmetic. What differs is how gradients are summed across ranks (bucketed reduce-scatter
    # vs. DDP's all-reduce), which moves the last bits of float32 and grows a little each step.
    for rank in (0, 1):
        ddp, zero = local_logs(runs["ddp"], rank), local_logs(runs[mode], rank)
        assert [row["step"] for row in ddp] == [row["step"] for row in zero] == [1, 2, 3, 4]
        assert zero[0]["g/total"] == pytest.approx(ddp[0]["g/total"], rel=1e-6)  # before any update
        for a, b in zip(ddp, zero, strict=True):
            for key in ("d/real", "d/fake", "g/mel", "g/adv", "g/fm"):
                assert b[key] == pytest.approx(a[key], rel=1e-4, abs=1e-6), (mode, rank, a["step"], key)


@pytest.mark.slow
@pytest.mark.parametrize("mode", [*ZERO, "ddp"])
def test_an_update_of_one_model_leaves_the_other_untouched(runs: dict[str, Path], mode: str) -> None:
    for rank in (0, 1):
        report = json.loads((runs[mode] / "frozen" / f"frozen-rank-{rank}.json").read_text())
        assert report["world_size"] == 2 and report["stage"] == (None if mode == "ddp" else int(mode[-1]))
        for step in report["steps"]:
            assert step == {"d_update_changed_d": True, "d_update_changed_g": False,
                            "g_update_changed_g": True, "g_update_changed_d": False}, (rank, step)
        ema = report["ema"]  # validation's view of the average (frozen_check.ema_check)
        assert ema["ema_applied_is_the_saved_average"] and ema["ema_applied_differs"], (rank, ema)
        assert ema["ema_gives_the_weights_back"], (rank, ema)


@pytest.mark.slow
@pytest.mark.parametrize("mode", ZERO)
def test_the_model_ema_matches_ddp_and_zero3_keeps_only_each_ranks_partition(runs: dict[str, Path],
                                                                            mode: str) -> None:
    final = open_checkpoint(checkpoints(runs[mode])[-1])
    ours, reference = average_state_dict(final), average_state_dict(open_checkpoint(checkpoints(runs["ddp"])[-1]))
    assert ours.keys() == reference.keys()
    for name, value in ours.items():  # apart only in gradient summation order (see the losses test)
        torch.testing.assert_close(value, reference[name], rtol=1e-4, atol=1e-5)
    reports = [json.loads((runs[mode] / "frozen" / f"frozen-rank-{rank}.json").read_text())["ema"] for rank in (0, 1)]
    whole = reports[0]["g_parameters"] * 4
    if mode != "zero3":  # every rank holds the whole average; rank 0 writes it
        assert FULL in final.files and all(report["ema_bytes"] == whole for report in reports)
        return
    assert FULL not in final.files
    for rank, report in enumerate(reports):
        part = torch.load(final.path / partition_file(rank), weights_only=True)
        assert part["ranks"] == 2
        for name, value in part["partition"].items():
            assert value.dtype == torch.float32 and value.numel() == -(-ours[name].numel() // 2), name
        # Half of the whole average on each rank, give or take each parameter's padding.
        assert whole / 2 <= report["ema_bytes"] < whole / 2 + 4 * len(ours), report


@pytest.mark.slow
@pytest.mark.parametrize("mode", ZERO)
def test_resume_from_a_checkpoint_continues_the_same_losses(runs: dict[str, Path], mode: str, tmp_path: Path) -> None:
    # The run's own step-2 checkpoint, resumed by a new job: steps 3 and 4 must repeat exactly.
    shutil.copytree(runs[mode] / "checkpoints" / "step-00000002", tmp_path / "checkpoints" / "step-00000002")
    done = run_distgan(train_args(tmp_path, *STEPS), launcher=f"accelerate:{MODES[mode]}")
    assert "resumed from" in done.stdout
    for rank in (0, 1):
        straight = {row["step"]: row for row in local_logs(runs[mode], rank)}
        resumed = {row["step"]: row for row in local_logs(tmp_path, rank)}
        assert sorted(resumed) == [3, 4]
        for step in (3, 4):
            for key in ("d/total", "g/total"):
                assert resumed[step][key] == straight[step][key], (rank, step, key)
    final = checkpoints(tmp_path)[-1]
    assert rank_state(final, 0)["weights"] == rank_state(checkpoints(runs[mode])[-1], 0)["weights"]
    resumed_ema, straight_ema = (average_state_dict(open_checkpoint(c)) for c in (final, checkpoints(runs[mode])[-1]))
    assert all(torch.equal(resumed_ema[name], value) for name, value in straight_ema.items())


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["zero2", "zero3"])
def test_export_matches_the_ddp_generator(runs: dict[str, Path], mode: str, tmp_path: Path) -> None:
    ours = export_generator(runs[mode], tmp_path / f"{mode}.safetensors")
    reference = export_generator(runs["ddp"], tmp_path / "ddp.safetensors")
    a, _, _ = read_export(ours)
    b, _, _ = read_export(reference)
    assert a.keys() == b.keys() and not any("parametrizations" in key for key in a)
    for key in a:
        assert a[key].dtype == torch.float32
        # Four updates apart from DDP only in gradient summation order (see the losses test).
        torch.testing.assert_close(a[key], b[key], rtol=1e-4, atol=1e-4)
    vocoder = load_generator(ours)
    wave = vocoder(torch.randn(1, 80, 12))
    assert wave.shape == (1, 12 * 256) and torch.isfinite(wave).all()


@pytest.mark.slow
def test_a_payload_in_a_zero_shard_never_runs(runs: dict[str, Path], tmp_path: Path) -> None:
    # DeepSpeed's loaders and zero_to_fp32 unpickle with weights_only=False; distgan does not let them.
    run = Path(shutil.copytree(runs["zero2"], tmp_path / "run"))
    marker, step4 = tmp_path / "payload-ran", run / "checkpoints" / "step-00000004"
    (shard,) = (step4 / "generator" / "zero").glob("zero_pp_rank_1_*optim_states.pt")
    poison(shard, marker)
    rewrite_manifest(step4)
    with pytest.raises(UnsafeCheckpointFile, match="refused to unpickle"), weights_only_loads(deepspeed_records()):
        get_fp32_state_dict_from_zero_checkpoint(str(step4 / "generator"), tag="zero")
    with pytest.raises(IncompleteCheckpoint, match="zero_pp_rank_1.*refused to unpickle"):
        load_generator(step4)
    done = run_distgan(["train", "--run-dir", str(run), "train.max_steps=5"], launcher="accelerate:cpu_zero2.yaml")
    assert f"passing over checkpoint {step4}" in done.stdout and "refused to unpickle" in done.stdout
    assert f"resumed from {run / 'checkpoints' / 'step-00000002'}" in done.stdout
    assert not marker.exists()


@pytest.mark.slow
def test_bf16_under_zero3_trains_and_ranks_agree(tmp_path: Path) -> None:
    run_distgan(train_args(tmp_path, "train.max_steps=2", "train.precision=bf16", STEPS[-1]),
                launcher="accelerate:cpu_zero3.yaml")
    final = checkpoints(tmp_path)[-1]
    assert rank_state(final, 0)["weights"] == rank_state(final, 1)["weights"]
    average = average_state_dict(open_checkpoint(final))  # the model EMA of bf16 partitions, kept in fp32
    assert average and all(value.dtype == torch.float32 and torch.isfinite(value).all() for value in average.values())
    assert all(row["g/total"] == row["g/total"] for row in local_logs(tmp_path, 0))  # not NaN


def assert_same_state(saved: Path, restored: Path) -> None:
    """Two dumps of state_dump.py hold the same weights, Adam moments, buffers and step counts."""
    a, b = (torch.load(path, weights_only=True) for path in (saved, restored))
    assert a["step"] == b["step"]
    for model in ("generator", "discriminator"):
        assert a[model]["optimizer_steps"] == b[model]["optimizer_steps"] != []
        assert a[model]["params"].keys() == b[model]["params"].keys()
        for name, tensors in a[model]["params"].items():
            for key, tensor in tensors.items():
                assert torch.equal(tensor, b[model]["params"][name][key]), (model, name, key)
        for name, buffer in a[model]["buffers"].items():
            assert torch.equal(buffer, b[model]["buffers"][name]), (model, name)
    assert a["ema"] is not None and a["ema"].keys() == b["ema"].keys()  # the model EMA, reshared exactly
    for name, value in a["ema"].items():
        assert torch.equal(value, b["ema"][name]), name


@pytest.mark.slow
@pytest.mark.parametrize("mode", ZERO)
def test_resume_on_another_world_size_restores_weights_moments_and_step(runs: dict[str, Path], mode: str,
                                                                        tmp_path: Path) -> None:
    # 2 ranks -> 1 (the fixture's step-4 checkpoint), then 1 -> 2 (the checkpoint the 1-rank run wrote).
    shutil.copytree(runs[mode] / "checkpoints" / "step-00000004", tmp_path / "checkpoints" / "step-00000004")
    dumps, every_step = tmp_path / "dumps", ["checkpoint.every_steps=1", "checkpoint.keep_last=5", STEPS[-1]]
    single = run_distgan(train_args(tmp_path, *every_step, "train.max_steps=5",
                                    f"dist.deepspeed_config={LAUNCH / 'deepspeed' / f'{mode}.json'}"),
                         script="state_dump.py", STATE_DUMP=str(dumps))
    assert "world size changed 2 -> 1: epoch 0 restarts from its first batch" in single.stdout
    assert "shm_comm" not in single.stdout + single.stderr  # DeepSpeed's CPU op is never built
    assert f"resumed from {tmp_path / 'checkpoints' / 'step-00000004'} (step 4)" in single.stdout
    assert_same_state(runs[mode] / "dumps" / "saved-step-4-ranks-2.pt", dumps / "restored-step-4-ranks-1.pt")
    double = run_distgan(train_args(tmp_path, *every_step, "train.max_steps=6"), launcher=f"accelerate:{MODES[mode]}",
                         script="state_dump.py", STATE_DUMP=str(dumps))
    assert "world size changed 1 -> 2" in double.stdout and "(step 5)" in double.stdout
    assert_same_state(dumps / "saved-step-5-ranks-1.pt", dumps / "restored-step-5-ranks-2.pt")
    final = checkpoints(tmp_path)[-1]
    assert final.name == "step-00000006" and rank_state(final, 0)["weights"] == rank_state(final, 1)["weights"]
    # The conversion is kept beside the partitions it came from, outside the checkpoint's manifest.
    assert (tmp_path / "checkpoints" / "step-00000005" / "generator" / "universal" / "zero").is_dir()


# ------------------------------------------------------------------------------------------------
# The DeepSpeed config distgan builds for each engine (no processes).


def test_auto_values_are_filled_from_the_distgan_config() -> None:
    cfg = load_config(TINY, ["data.batch_size=3", "train.grad_accum=2", "train.precision=bf16",
                             "optim.generator.grad_clip=5"])
    base = json.loads((LAUNCH / "deepspeed" / "zero2.json").read_text())
    ds = fill_deepspeed_config(base, cfg, cfg.optim.generator, world_size=4)
    assert (ds["train_micro_batch_size_per_gpu"], ds["gradient_accumulation_steps"], ds["train_batch_size"]) == (3, 2, 24)
    assert ds["gradient_clipping"] == 5.0
    assert ds["bf16"]["enabled"] is True and ds["fp16"]["enabled"] is False
    assert fill_deepspeed_config(base, cfg, cfg.optim.discriminator, 4)["gradient_clipping"] == 0.0


def test_fp16_gets_its_own_dynamic_loss_scaler_section() -> None:
    # The config each engine receives; a real ZeRO-2 fp16 run is test_deepspeed_fp16.py (DeepSpeed's
    # CPU accelerator runs fp16 only on CPUs with fp16 kernels).
    cfg = load_config(TINY, ["train.precision=fp16"])
    ds = fill_deepspeed_config({"zero_optimization": {"stage": 1}}, cfg, cfg.optim.generator, 2)
    assert ds["fp16"] == {"enabled": True, "loss_scale": 0, "initial_scale_power": 16}
    assert ds["bf16"] == {"enabled": False}


def test_contradictions_and_stage_zero_are_refused() -> None:
    cfg = load_config(TINY)
    with pytest.raises(ConfigError, match="train_micro_batch_size_per_gpu=8 but the distgan config implies 16"):
        fill_deepspeed_config({"train_micro_batch_size_per_gpu": 8, "zero_optimization": {"stage": 2}},
                              load_config(TINY, ["data.batch_size=16"]), cfg.optim.generator, 1)
    with pytest.raises(ConfigError, match="bf16.enabled=True but the distgan config implies False"):
        fill_deepspeed_config({"bf16": {"enabled": True}, "zero_optimization": {"stage": 2}}, cfg, cfg.optim.generator, 1)
    with pytest.raises(ConfigError, match="stage 0 is not supported"):
        fill_deepspeed_config({"zero_optimization": {"stage": 0}}, cfg, cfg.optim.generator, 1)


@pytest.mark.parametrize("name", ["zero1.json", "zero2.json", "zero2_offload.json", "zero3.json"])
def test_shipped_deepspeed_configs_fill_cleanly(name: str) -> None:
    cfg = load_config(REPO_ROOT / "configs" / "hifigan_v1.yaml", ["train.precision=bf16"])
    ds = fill_deepspeed_config(json.loads((LAUNCH / "deepspeed" / name).read_text()), cfg, cfg.optim.generator, 8)
    assert "auto" not in json.dumps(ds)
    assert ds["train_batch_size"] == 16 * 8 and ds["zero_optimization"]["stage"] in (1, 2, 3)


@pytest.mark.slow
def test_a_zero2_checkpoint_in_one_plain_process_is_kept_and_its_launch_mode_named(runs: dict[str, Path],
                                                                                  tmp_path: Path) -> None:
    # Issue 23: this used to fail on generator/state.pt, move the healthy checkpoint aside and say
    # that none could be loaded, so that the next start began from step 0.
    run = Path(shutil.copytree(runs["zero2"], tmp_path / "run"))
    before = sorted(p.name for p in (run / "checkpoints").iterdir())
    done = run_distgan(["train", "--run-dir", str(run), "train.max_steps=5"], check=False)
    assert done.returncode == 2, done.stderr[-3000:]
    assert "written by DeepSpeed ZeRO-2 on 2 processes, and this start is a single process (no DeepSpeed)" in done.stderr
    assert f"accelerate launch --config_file launch/cpu_zero2.yaml -m distgan train --run-dir {run}" in done.stderr
    assert "Traceback" not in done.stderr and "moved the rejected" not in done.stdout
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == before


@pytest.mark.slow
def test_a_zero2_run_whose_only_checkpoint_is_poisoned_refuses_to_start_afresh(runs: dict[str, Path],
                                                                               tmp_path: Path) -> None:
    run = Path(shutil.copytree(runs["zero2"], tmp_path / "run"))
    shutil.rmtree(run / "checkpoints" / "step-00000002")
    step4 = run / "checkpoints" / "step-00000004"
    (shard,) = (step4 / "generator" / "zero").glob("zero_pp_rank_1_*optim_states.pt")
    poison(shard, tmp_path / "payload-ran")
    rewrite_manifest(step4)
    done = run_distgan(["train", "--run-dir", str(run), "train.max_steps=5"], launcher="accelerate:cpu_zero2.yaml",
                       check=False)
    assert done.returncode != 0
    assert "exitcode  : 7" in done.stderr  # every rank's status, as the launcher reports it
    assert "none of its checkpoints can be resumed: step-00000004 (rejected: " in done.stderr
    assert "refused to unpickle" in done.stderr and "add --fresh-start" in done.stderr
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == ["step-00000004.rejected"]
    assert not (tmp_path / "payload-ran").exists()
