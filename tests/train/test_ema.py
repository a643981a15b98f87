"""The model EMA (``train.ema_decay``): the average it keeps, skipped updates, the checkpoint and
resume, and ``--ema`` in synthesize and export. One process (``DDPEngine``); ZeRO-3's partitions
are checked in tests/train/test_deepspeed.py, on the runs it makes anyway."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import soundfile
import torch

from distgan.checkpoint.ema import FULL, average_state_dict
from distgan.checkpoint.format import MARKER, open_checkpoint
from distgan.checkpoint.weights import generator_state_dict, read_export
from distgan.cli import main as distgan
from distgan.config import ConfigError, load_config
from distgan.inference.load import load_generator
from distgan.train.trainer import Trainer
from tests.train.helpers import FAST, REPO_ROOT, TINY, checkpoints

DECAY = 0.9  # far from 1, so that three steps leave the average well apart from the weights
EMA = [f"train.ema_decay={DECAY}", "train.max_steps=3", "checkpoint.every_steps=2"]


def close(trainer: Trainer) -> None:
    trainer.watchdog.close()
    trainer.logger.close()
    trainer.data.close()
    trainer.lock.release()


def weights(trainer: Trainer) -> dict[str, torch.Tensor]:
    return {name: p.detach().clone() for name, p in trainer.g.model.named_parameters()}


@pytest.fixture(scope="module")
def straight(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Three steps with the average, checkpoints at steps 2 and 3."""
    run = tmp_path_factory.mktemp("ema") / "straight"
    Trainer(load_config(TINY, [*FAST, *EMA]), run).fit()
    return run


def test_the_average_is_the_hand_computed_one_and_a_skipped_update_leaves_it(tmp_path: Path) -> None:
    trainer = Trainer(load_config(TINY, [*FAST, f"train.ema_decay={DECAY}"]), tmp_path / "run")
    try:
        expected = weights(trainer)
        batches = trainer._batches()
        for _ in range(3):
            trainer.train_step([next(batches)])
            trainer.state.step += 1
            for name, value in weights(trainer).items():
                expected[name] = expected[name] + (1 - DECAY) * (value - expected[name])
        average, live = trainer.ema.average, weights(trainer)
        assert all(value.dtype == torch.float32 for value in average.values())
        for name, value in expected.items():
            torch.testing.assert_close(average[name], value, rtol=0, atol=1e-7)
        assert max(float((average[name] - live[name]).abs().max()) for name in live) > 1e-4

        # A non-finite G loss: the update is skipped on the device, weights and average stay.
        before = {name: value.clone() for name, value in average.items()}
        objective = trainer.gan_step.objective
        terms_of = objective.generator_terms

        def poisoned(*args, **kwargs):
            terms, total = terms_of(*args, **kwargs)
            terms["g/mel"] = terms["g/mel"] * float("nan")
            return terms, total

        objective.generator_terms = poisoned
        trainer.train_step([next(batches)])
        assert trainer.state.consecutive_skips == 1  # the step did skip
        assert all(torch.equal(live[name], value) for name, value in weights(trainer).items())
        assert all(torch.equal(before[name], average[name]) for name in before)
        trainer.ema.update(True)  # a host flag: the same
        assert all(torch.equal(before[name], average[name]) for name in before)
    finally:
        close(trainer)


def test_validation_runs_on_the_average_and_gives_the_weights_back(tmp_path: Path) -> None:
    trainer = Trainer(load_config(TINY, [*FAST, f"train.ema_decay={DECAY}"]), tmp_path / "run")
    try:
        batches = trainer._batches()
        trainer.train_step([next(batches)])
        live = weights(trainer)
        seen = {}
        with trainer.ema.applied():
            seen.update(weights(trainer))
        assert all(torch.equal(seen[name], trainer.ema.average[name]) for name in seen)
        assert any(not torch.equal(seen[name], live[name]) for name in seen)
        assert all(torch.equal(live[name], value) for name, value in weights(trainer).items())
    finally:
        close(trainer)


def test_the_average_is_checkpointed_and_a_resume_continues_it_bit_for_bit(straight: Path, tmp_path: Path) -> None:
    step2, step3 = checkpoints(straight)
    assert FULL in open_checkpoint(step2).files  # listed in the marker: digested, verified on resume
    resumed = tmp_path / "resumed"
    shutil.copytree(step2, resumed / "checkpoints" / step2.name)
    trainer = Trainer(load_config(TINY, [*FAST, *EMA]), resumed)
    saved = average_state_dict(open_checkpoint(step2))
    assert all(torch.equal(trainer.ema.average[name], value) for name, value in saved.items())
    trainer.fit()
    a, b = (average_state_dict(open_checkpoint(c)) for c in (step3, checkpoints(resumed)[-1]))
    assert a.keys() == b.keys() and all(torch.equal(a[name], b[name]) for name in a)
    assert any(not torch.equal(a[name], saved[name]) for name in a)  # step 3 did move it


def _without_average(checkpoint: Path, to: Path) -> Path:
    shutil.copytree(checkpoint, to)
    shutil.rmtree(to / "ema")
    marker = json.loads((to / MARKER).read_text())  # as a run without the setting writes it
    marker["files"] = {name: entry for name, entry in marker["files"].items() if not name.startswith("ema/")}
    (to / MARKER).write_text(json.dumps(marker) + "\n")
    return to


def test_ema_loads_the_average_in_synthesize_and_export(straight: Path, tmp_path: Path) -> None:
    checkpoint = open_checkpoint(checkpoints(straight)[-1])
    average, live = generator_state_dict(checkpoint, ema=True), generator_state_dict(checkpoint)
    assert all(torch.equal(value, average[name]) for name, value in average_state_dict(checkpoint).items())
    assert any(not torch.equal(average[name], live[name]) for name in live)

    clip = tmp_path / "clip.wav"
    soundfile.write(clip, 0.1 * torch.randn(8192, generator=torch.Generator().manual_seed(0)).numpy(), 22050)
    for flags, out in (([], "live"), (["--ema"], "ema")):
        assert distgan(["synthesize", "--checkpoint", str(straight), str(clip), "--out", str(tmp_path / out),
                        "--device", "cpu", *flags]) == 0
        assert distgan(["export", str(straight), str(tmp_path / f"{out}.safetensors"), *flags]) == 0
    ema_wave, live_wave = (soundfile.read(tmp_path / out / "clip.wav")[0] for out in ("ema", "live"))
    assert abs(ema_wave - live_wave).max() > 1e-4
    exported = read_export(tmp_path / "ema.safetensors")[0]
    vocoder = load_generator(straight, ema=True)  # weight norm removed, as in the export
    assert all(torch.equal(exported[name], value) for name, value in vocoder.generator.state_dict().items())
    assert "weights: ema" in (tmp_path / "ema.yaml").read_text()
    assert not torch.equal(read_export(tmp_path / "live.safetensors")[0][name := next(iter(exported))], exported[name])


def test_ema_is_refused_for_a_checkpoint_or_an_export_without_an_average(straight: Path, tmp_path: Path,
                                                                         capsys: pytest.CaptureFixture) -> None:
    bare = _without_average(checkpoints(straight)[-1], tmp_path / "bare")
    assert distgan(["export", str(bare), str(tmp_path / "g.safetensors"), "--ema"]) == 2
    said = capsys.readouterr().out
    assert "holds no average" in said and "train.ema_decay" in said
    assert distgan(["export", str(bare), str(tmp_path / "g.safetensors")]) == 0  # without --ema: its weights
    with pytest.raises(ValueError, match="is an export"):
        load_generator(tmp_path / "g.safetensors", ema=True)


def test_a_resume_from_a_checkpoint_without_an_average_starts_it_from_the_weights(straight: Path,
                                                                                 tmp_path: Path) -> None:
    run = tmp_path / "run"
    _without_average(checkpoints(straight)[0], run / "checkpoints" / checkpoints(straight)[0].name)
    trainer = Trainer(load_config(TINY, [*FAST, *EMA]), run)
    try:
        assert all(torch.equal(trainer.ema.average[name], value) for name, value in weights(trainer).items())
    finally:
        close(trainer)


def test_decode_with_ema_decodes_with_the_average(tmp_path: Path) -> None:
    # Any family: a codec (dac_tiny), two steps; the same codes decode to other audio with --ema.
    run = tmp_path / "dac"
    Trainer(load_config(REPO_ROOT / "configs" / "dac_tiny.yaml", [*FAST, "train.max_steps=2", "train.ema_decay=0.5"]),
            run).fit()
    clip = tmp_path / "clip.wav"
    soundfile.write(clip, 0.1 * torch.randn(4096, generator=torch.Generator().manual_seed(0)).numpy(), 16000)
    assert distgan(["encode", "--checkpoint", str(run), str(clip), "--out", str(tmp_path / "codes"), "--ema"]) == 0
    codes = tmp_path / "codes" / "clip.codes.safetensors"
    for flags, out in (([], "live"), (["--ema"], "ema")):
        assert distgan(["decode", str(codes), "--out", str(tmp_path / out), "--device", "cpu", *flags]) == 0
    ema_wave, live_wave = (soundfile.read(tmp_path / out / "clip.wav")[0] for out in ("ema", "live"))
    assert ema_wave.shape == live_wave.shape and abs(ema_wave - live_wave).max() > 1e-5


@pytest.mark.parametrize("decay", ["0", "1", "1.5", "-0.1"])
def test_the_config_refuses_a_decay_outside_zero_to_one(decay: str) -> None:
    with pytest.raises(ConfigError, match="train.ema_decay"):
        load_config(TINY, [f"train.ema_decay={decay}"])
    assert load_config(TINY, ["train.ema_decay=0.99"]).train.ema_decay == 0.99
    assert load_config(TINY).train.ema_decay is None
