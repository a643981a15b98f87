"""Config: typed loading, dotted overrides, errors that name the key, the paper's recipes."""

from __future__ import annotations

from pathlib import Path

import pytest

from distgan.commands.train import resolve_config
from distgan.config import ConfigError, config_from_yaml_text, dump_config, iter_fields, load_config
from tests.train.helpers import REPO_ROOT, run_distgan

CONFIGS = REPO_ROOT / "configs"


def test_overrides_reach_typed_fields() -> None:
    cfg = load_config(CONFIGS / "tiny.yaml", ["train.max_steps=1000", "data.shards=/data/ljs",
                                               "optim.generator.betas=[0.5, 0.9]", "optim.discriminator.grad_clip=10"])
    assert cfg.train.max_steps == 1000 and isinstance(cfg.train.max_steps, int)
    assert cfg.data.shards == "/data/ljs"
    assert cfg.optim.generator.betas == [0.5, 0.9]
    assert cfg.optim.discriminator.grad_clip == 10.0 and isinstance(cfg.optim.discriminator.grad_clip, float)


@pytest.mark.parametrize(("override", "message"), [
    ("train.max_step=5", "unknown config key 'train.max_step'; did you mean 'train.max_steps'?"),
    ("trian.max_steps=5", "unknown config key 'trian'; did you mean 'train'?"),
    ("train.max_steps=abc", "train.max_steps: expected an integer, got 'abc'"),
    ("data.batch_size=2.5", "data.batch_size: expected an integer, got 2.5"),
    ("train.precision=fp8", "train.precision: 'fp8' is not one of ['fp32', 'bf16', 'fp16']"),
    ("train.max_steps", "not of the form section.key=value"),
    ("train=5", "expected a mapping"),
    ("log.val_metrics=[pesq, mos]", "log.val_metrics: unknown metrics ['mos']"),
])
def test_bad_overrides_name_the_key(override: str, message: str) -> None:
    with pytest.raises(ConfigError) as err:
        load_config(CONFIGS / "tiny.yaml", [override])
    assert message in str(err.value)


def test_renamed_keys_and_values_still_load_with_a_message(tmp_path: Path, capsys) -> None:
    # precision "no" became "fp32" (YAML 1.1 reads a bare `no` as false, so both spellings);
    # log.audio_every_steps became log.val_every_steps, in a file and on the command line.
    for override in ("train.precision=no", "train.precision='no'"):
        assert load_config(None, [override]).train.precision == "fp32"
        assert "train.precision value" in capsys.readouterr().err
    cfg = load_config(None, ["log.audio_every_steps=7"])
    assert cfg.log.val_every_steps == 7
    assert "'log.audio_every_steps' is deprecated, read as 'log.val_every_steps'" in capsys.readouterr().err
    old = tmp_path / "old.yaml"
    old.write_text("train:\n  precision: no\nlog:\n  audio_every_steps: 9\n")
    cfg = load_config(old)
    assert (cfg.train.precision, cfg.log.val_every_steps) == ("fp32", 9)
    assert config_from_yaml_text(old.read_text()).log.val_every_steps == 9
    with pytest.raises(ConfigError, match="unknown config key 'log.audio_every'"):
        load_config(None, ["log.audio_every=1"])


def test_unknown_key_in_a_file_is_named(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("model:\n  generator:\n    upsample_rate: [8, 8, 2, 2]\n")
    with pytest.raises(ConfigError, match="'model.generator.upsample_rate'; did you mean 'model.generator.upsample_rates'"):
        load_config(path)


@pytest.mark.parametrize(("overrides", "message"), [
    (["audio.hop_length=200"], "upsample_rates multiply to 256"),
    (["data.segment_samples=8000"], "must be a multiple of audio.hop_length"),
    (["audio.fmax=20000"], "audio.fmax=20000.0 must lie in"),
    (["loss.balancer.total_norm=0"], "loss.balancer: total_norm must be positive"),
    (["loss.balancer.ema_decay=1.5"], "ema_decay in \\[0, 1\\]"),
])
def test_inconsistent_numbers_are_refused(overrides: list[str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_config(CONFIGS / "hifigan_v1.yaml", overrides)


def test_hifigan_recipes_carry_the_paper_hyperparameters() -> None:
    for name, channels in (("hifigan_v1", 512), ("hifigan_v2", 128), ("hifigan_v3", 256)):
        cfg = load_config(CONFIGS / f"{name}.yaml")
        a = cfg.audio
        assert (a.sample_rate, a.n_fft, a.hop_length, a.win_length, a.n_mels, a.fmin, a.fmax) == \
            (22050, 1024, 256, 1024, 80, 0.0, 8000.0)
        assert (cfg.data.segment_samples, cfg.data.batch_size) == (8192, 16)
        for optim in (cfg.optim.generator, cfg.optim.discriminator):
            assert (optim.lr, optim.betas, optim.lr_decay, optim.lr_decay_every) == (2e-4, [0.8, 0.99], 0.999, "epoch")
        assert cfg.model.generator.upsample_initial_channel == channels
        assert (cfg.loss.adversarial, cfg.loss.fm_weight, cfg.loss.mel_weight) == ("lsgan", 2.0, 45.0)
    assert load_config(CONFIGS / "hifigan_v3.yaml").model.generator.resblock == "2"


def test_saved_config_round_trips() -> None:
    cfg = load_config(CONFIGS / "tiny.yaml", ["train.max_steps=7"])
    assert config_from_yaml_text(dump_config(cfg)) == cfg


def test_run_directory_config_is_reused_without_config(tmp_path: Path) -> None:
    (tmp_path / "config.yaml").write_text(dump_config(load_config(CONFIGS / "tiny.yaml", ["train.max_steps=11"])))
    assert resolve_config(None, tmp_path, ["train.max_steps=12"]).train.max_steps == 12
    assert resolve_config(None, tmp_path, []).train.max_steps == 11
    with pytest.raises(ConfigError, match="holds no config.yaml: a new run directory needs --config"):
        resolve_config(None, tmp_path / "fresh", [])


def test_every_field_is_listed_for_the_reference() -> None:
    names = [name for name, _, _ in iter_fields()]
    assert "train.max_steps" in names and "data.shards" in names and "model.generator.resblock" in names
    assert len(names) == len(set(names))


def test_cli_reports_config_errors_before_starting(tmp_path: Path) -> None:
    done = run_distgan(["train", "--config", str(CONFIGS / "tiny.yaml"), "--run-dir", str(tmp_path / "run"),
                        "train.max_stepz=3"], check=False, timeout=60)
    assert done.returncode == 2
    assert "did you mean 'train.max_steps'" in done.stderr
    assert not (tmp_path / "run").exists()  # failed before creating anything


def test_quality_metric_names_match_the_metrics_module() -> None:
    from distgan.config import QUALITY_METRICS
    from distgan.evaluation.metrics import METRICS

    assert QUALITY_METRICS == METRICS
