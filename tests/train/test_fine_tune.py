"""Fine-tuning from a distgan run (``train.init_from``), as a user launches it: the new run starts at
step 0 from the source's weights on every rank, under DDP, ZeRO-2 and ZeRO-3, and on ljspeech-mini its
first validation is where the source ended, not where a fresh run starts.

One source run (20 mel-only steps of configs/tiny.yaml), then each launch mode's fine-tuning run
once: one D-only warm-up step (train.d_warmup_steps=1), so the generator is still exactly the
source's when the run validates and checkpoints at step 1.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from distgan.config import ConfigError, load_config
from distgan.families import build_generator
from distgan.inference.export import export_generator
from distgan.inference.load import load_generator
from distgan.models.build import build_discriminators
from distgan.train.init_from import check_init_from, load_initial_weights
from distgan.train.trainer import Trainer
from tests.conftest import LJSPEECH_MINI
from tests.train.helpers import (
    FAST,
    LAUNCH,
    TINY,
    checkpoints,
    ddp_state,
    local_logs,
    rank_state,
    run_distgan,
    scalars,
    train_args,
)

SOURCE_STEPS = 20
VALIDATION = ["log.val_clips=2", "log.val_metrics=[]"]
# After one D-only step the generator is the one loaded; the run validates and checkpoints there.
FINE_TUNE = ["train.d_warmup_steps=1", "train.max_steps=1", "log.val_every_steps=1", *VALIDATION]
# Two processes under torchrun (lighter than accelerate launch); ZeRO-2/3 through dist.deepspeed_config.
MODES = {"ddp": [], **{f"zero{n}": [f"dist.deepspeed_config={LAUNCH / 'deepspeed' / f'zero{n}.json'}"] for n in (2, 3)}}


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    """ljspeech-mini as shards with 2 held-out clips, or the synthetic corpus without ../shared."""
    if not (LJSPEECH_MINI / "metadata.csv").is_file():
        return []
    from distgan.data.prepare import PrepareOptions, prepare_corpus

    out = tmp_path_factory.mktemp("ljspeech-shards")
    prepare_corpus(LJSPEECH_MINI, out, PrepareOptions(val_count=2, progress=False))
    return [f"data.shards={out}"]


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory, data: list[str]) -> Path:
    """A short run that trained G on the mel loss alone (cheap steps), validated at its end."""
    run = tmp_path_factory.mktemp("source")
    run_distgan(train_args(run, f"train.max_steps={SOURCE_STEPS}", f"train.mel_only_steps={SOURCE_STEPS}",
                           f"log.val_every_steps={SOURCE_STEPS}", *VALIDATION, *data))
    return run


@pytest.fixture(scope="module")
def fine_tuned(tmp_path_factory: pytest.TempPathFactory, source: Path, data: list[str]):
    """The fine-tuning run of a launch mode (two processes), started once and shared."""
    runs: dict[str, tuple[Path, str]] = {}

    def launch(mode: str) -> tuple[Path, str]:
        if mode not in runs:
            run = tmp_path_factory.mktemp(f"fine-tuned-{mode}")
            moments = ["train.init_optimizers=true"] if mode == "ddp" else []  # ZeRO refuses them
            done = run_distgan(train_args(run, f"train.init_from={source}", "train.init_discriminator=true",
                                          *moments, *MODES[mode], *FINE_TUNE, *data), launcher="torchrun")
            runs[mode] = (run, done.stdout)
        return runs[mode]

    return launch


def _fingerprints(checkpoint: Path, rank: int) -> dict[str, str]:
    return rank_state(checkpoint, rank)["weights"]


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["ddp", "zero2", "zero3"])
def test_a_fine_tuning_run_starts_from_the_source_weights_on_every_rank(fine_tuned, source: Path, mode: str) -> None:
    run, stdout = fine_tuned(mode)
    assert "initialised the generator and discriminator" in stdout
    assert (f"DeepSpeed ZeRO-{mode[-1]}" if mode != "ddp" else "DDP") in stdout
    (source_checkpoint,), (checkpoint,) = checkpoints(source), checkpoints(run)
    assert checkpoint.name == "step-00000001"  # a new run: its own step count, not the source's 20
    source_weights = _fingerprints(source_checkpoint, 0)
    ranks = [_fingerprints(checkpoint, rank) for rank in (0, 1)]
    # The full weights (ZeRO-3: gathered from both ranks' partitions) are the source's generator...
    assert all(weights["generator"] == source_weights["generator"] for weights in ranks)
    # ...and a discriminator that started from the source's and trained one warm-up step, alike on both ranks.
    assert ranks[0]["discriminator"] == ranks[1]["discriminator"] != source_weights["discriminator"]
    (row,) = local_logs(run)
    assert "d/total" in row and "g/mel" not in row and "grad_norm/g" not in row  # the D-only warm-up
    if mode == "ddp":  # G did not step: its Adam moments are still exactly the source's
        loaded, saved = (ddp_state(c, "generator")["optimizer"]["state"] for c in (checkpoint, source_checkpoint))
        assert loaded.keys() == saved.keys() and len(saved) > 10
        assert all(torch.equal(loaded[i]["exp_avg_sq"], saved[i]["exp_avg_sq"]) for i in saved)
        assert all(float(loaded[i]["step"]) == SOURCE_STEPS for i in saved)


def _fresh_start(data: list[str], run_dir: Path) -> float:
    """val/mel_l1 of a fresh run's generator: the same run without init_from, validated before
    its first step (in this process: a subprocess would cost a start-up for one number)."""
    trainer = Trainer(load_config(TINY, [*FAST, *FINE_TUNE, *data]), run_dir)
    try:
        return trainer.validator.run(trainer.g, trainer.logger, 0)["val/mel_l1"]
    finally:
        trainer.watchdog.close()
        trainer.logger.close()
        trainer.data.close()
        trainer.lock.release()


@pytest.mark.slow
def test_fine_tuning_continues_the_source_curve_on_ljspeech(ljspeech_mini: Path, fine_tuned, source: Path,
                                                           data: list[str], tmp_path: Path) -> None:
    source_end = scalars(source)["val/mel_l1"][SOURCE_STEPS]
    first = scalars(fine_tuned("ddp")[0])["val/mel_l1"][1]  # the fine-tuned run's first logged step
    fresh_start = _fresh_start(data, tmp_path / "fresh")
    assert first == pytest.approx(source_end, abs=1e-5)  # the same G on the same held-out clips
    assert fresh_start - source_end > 0.1, (fresh_start, source_end)  # the source did learn...
    assert fresh_start - first > 0.1  # ...and the fine-tuning run starts where it ended, not afresh


def test_each_distgan_source_gives_the_source_generator(source: Path, tmp_path: Path) -> None:
    export = export_generator(source, tmp_path / "source.safetensors")
    expected = load_generator(source)
    mel = torch.randn(1, 80, 6, generator=torch.Generator().manual_seed(1))
    (checkpoint,) = checkpoints(source)
    for path in (source, checkpoint, export):
        cfg = load_config(TINY, [f"train.init_from={path}"])
        check_init_from(cfg, tmp_path / "run")
        torch.manual_seed(5)
        generator = build_generator(cfg.model.generator, cfg.audio)
        state = load_initial_weights(cfg, tmp_path / "run", generator,
                                     build_discriminators(cfg.model.discriminator, cfg.audio.sample_rate))
        assert state.parts == ["generator"]
        with torch.no_grad():
            torch.testing.assert_close(generator.eval()(mel).squeeze(1), expected(mel), rtol=0, atol=1e-5)
    with pytest.raises(ConfigError, match="model.generator.upsample_initial_channel=64 there but 32 here"):
        check_init_from(load_config(TINY, [f"train.init_from={source}", "model.generator.upsample_initial_channel=32"]),
                        tmp_path / "run")
    with pytest.raises(ConfigError, match="an export holds the generator only"):
        check_init_from(load_config(TINY, [f"train.init_from={export}", "train.init_discriminator=true"]),
                        tmp_path / "run")
