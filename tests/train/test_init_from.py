"""``train.init_from`` from the original code's files: HiFi-GAN's g_/do_ pairs and BigVGAN's Hub
files, written by the reference packages' own classes and checkpoint savers, read weights-only;
their config.json held against the config; the Adam moments mapped onto distgan's parameters.
Also the D-only warm-up: G stands still while D learns."""

from __future__ import annotations

import contextlib
import itertools
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

from distgan.config import ConfigError, load_config
from distgan.distributed import ProcessInfo
from distgan.families import build_generator
from distgan.losses.mel import MelSpectrogram
from distgan.models.build import build_discriminators
from distgan.train.ddp_engine import DDPEngine
from distgan.train.init_from import check_init_from, load_initial_weights
from distgan.train.preflight import check_run
from distgan.train.step import GANStep
from tests.models.helpers import single_thread
from tests.train.helpers import FAST, REPO_ROOT, TINY, poison

hifi_gan = pytest.importorskip("hifi_gan.models", reason="the hifi-gan reference package is not installed")
hifi_gan_utils = pytest.importorskip("hifi_gan.utils")
AttrDict = pytest.importorskip("hifi_gan.env").AttrDict

BIGVGAN_TINY = REPO_ROOT / "configs" / "bigvgan_tiny.yaml"
# configs/tiny.yaml's generator and mel settings under HiFi-GAN's config.json keys.
HIFIGAN_JSON = {"resblock": "2", "upsample_rates": [8, 8, 4], "upsample_kernel_sizes": [16, 16, 8],
                "upsample_initial_channel": 64, "resblock_kernel_sizes": [3, 5],
                "resblock_dilation_sizes": [[1, 3], [1, 3]], "num_mels": 80, "sampling_rate": 22050, "hop_size": 256,
                "n_fft": 1024, "win_size": 1024, "fmin": 0, "fmax": 8000, "learning_rate": 0.0002, "adam_b1": 0.8,
                "adam_b2": 0.99}
# configs/bigvgan_tiny.yaml under BigVGAN's keys, its MPD at an eighth of the width.
BIGVGAN_JSON = {**HIFIGAN_JSON, "fmax": None, "activation": "snakebeta", "snake_logscale": True,
                "use_tanh_at_final": False, "use_bias_at_final": False, "mpd_reshapes": [2, 3, 5],
                "use_spectral_norm": False, "discriminator_channel_mult": 0.125, "use_cqtd_instead_of_mrd": True,
                "cqtd_filters": 8, "cqtd_max_filters": 16, "cqtd_filters_scale": 1, "cqtd_dilations": [1, 2],
                "cqtd_hop_lengths": [256, 128], "cqtd_n_octaves": [7, 7], "cqtd_bins_per_octaves": [12, 24]}
BIGVGAN_OVERRIDES = ["model.discriminator.periods=[2,3,5]", "model.discriminator.mpd_channels=[4,16,64,128,128]"]

pytestmark = [pytest.mark.filterwarnings("ignore:.*torch.nn.utils.weight_norm.* is deprecated:FutureWarning"),
              pytest.mark.filterwarnings("ignore:A window was not provided:UserWarning")]


@pytest.fixture(scope="module", autouse=True)
def one_thread() -> Iterator[None]:
    with single_thread():
        yield


def _train_one_step(optimizer: torch.optim.Optimizer, params: list[torch.nn.Parameter], seed: int) -> None:
    """One AdamW step on random gradients: moments that differ per parameter."""
    generator = torch.Generator().manual_seed(seed)
    for p in params:
        p.grad = torch.randn(p.shape, generator=generator)
    optimizer.step()


@pytest.fixture(scope="module")
def hifigan_release(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, torch.nn.Module]:
    """A folder as jik876/hifi-gan's train.py leaves it: config.json, g_ files of two steps (the
    newer one is the model returned). Its discriminators are full size (the code fixes them), so
    this release is used for the generator."""
    folder = tmp_path_factory.mktemp("hifigan-release")
    (folder / "config.json").write_text(json.dumps(HIFIGAN_JSON))
    for step, seed in ((100, 1), (200, 2)):
        torch.manual_seed(seed)
        generator = hifi_gan.Generator(AttrDict(HIFIGAN_JSON))
        hifi_gan_utils.save_checkpoint(str(folder / f"g_{step:08d}"), {"generator": generator.state_dict()})
    return folder, generator.eval()


def _fresh_models(cfg) -> tuple[torch.nn.Module, torch.nn.Module]:
    torch.manual_seed(123)  # other weights than any release here
    return build_generator(cfg.model.generator, cfg.audio), build_discriminators(
        cfg.model.discriminator, cfg.audio.sample_rate)


def test_a_hifigan_release_generator_loads_into_a_new_run(hifigan_release: tuple, tmp_path: Path) -> None:
    folder, reference = hifigan_release
    cfg = load_config(TINY, [f"train.init_from={folder}"])
    check_run(cfg, tmp_path / "run")  # the config.json matches: no error
    generator, discriminator = _fresh_models(cfg)
    d_before = {k: v.clone() for k, v in discriminator.state_dict().items()}
    state = load_initial_weights(cfg, tmp_path / "run", generator, discriminator)
    assert state.parts == ["generator"] and state.source.release.generator.name == "g_00000200"
    mel = torch.randn(1, 80, 6, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        expected = reference(mel)
        torch.testing.assert_close(generator.eval()(mel), expected, rtol=0, atol=1e-6)
    assert expected.abs().max() > 1e-3
    assert all(torch.equal(v, d_before[k]) for k, v in discriminator.state_dict().items())  # D stays fresh


def test_a_release_config_that_differs_names_both_values(hifigan_release: tuple, tmp_path: Path) -> None:
    folder = tmp_path / "release"
    folder.mkdir()
    (folder / "g_00000200").write_bytes((hifigan_release[0] / "g_00000200").read_bytes())
    (folder / "config.json").write_text(json.dumps({**HIFIGAN_JSON, "num_mels": 100, "upsample_initial_channel": 128}))
    cfg = load_config(TINY, [f"train.init_from={folder}"])
    with pytest.raises(ConfigError) as caught:
        check_run(cfg, tmp_path / "run")
    message = str(caught.value)
    assert "config.json num_mels=100 but audio.n_mels=80" in message
    assert "upsample_initial_channel=128 but model.generator.upsample_initial_channel=64" in message
    assert "hop_size" not in message and "resblock_kernel_sizes" not in message  # only what differs
    assert not (tmp_path / "run").exists()


def test_a_release_file_that_would_run_code_is_refused(hifigan_release: tuple, tmp_path: Path) -> None:
    folder = tmp_path / "release"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps(HIFIGAN_JSON))
    (folder / "g_00000200").write_bytes((hifigan_release[0] / "g_00000200").read_bytes())
    marker = tmp_path / "payload-ran"
    poison(folder / "g_00000200", marker)
    cfg = load_config(TINY, [f"train.init_from={folder / 'g_00000200'}"])
    check_run(cfg, tmp_path / "run")  # the config is fine; the weights are read when the run starts
    with pytest.raises(ConfigError, match="refused to unpickle"):
        load_initial_weights(cfg, tmp_path / "run", *_fresh_models(cfg))
    assert not marker.exists()


@pytest.mark.parametrize(("overrides", "problem"), [
    (["train.init_discriminator=true"], "holds no discriminator file|no discriminator file beside it"),
    (["train.init_optimizers=true", "dist.deepspeed_config=launch/deepspeed/zero2.json"], "DeepSpeed ZeRO"),
])
def test_what_a_source_cannot_give_is_refused_before_training(hifigan_release: tuple, tmp_path: Path,
                                                              overrides: list[str], problem: str) -> None:
    cfg = load_config(TINY, [f"train.init_from={hifigan_release[0]}", *overrides])
    with pytest.raises(ConfigError, match=problem):
        check_init_from(cfg, tmp_path / "run")


def test_init_options_need_a_source_and_the_source_must_exist(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="train.init_from, which is not set"):
        load_config(TINY, ["train.init_discriminator=true"])
    with pytest.raises(ConfigError, match="no such file"):
        check_init_from(load_config(TINY, [f"train.init_from={tmp_path / 'nothing'}"]), tmp_path / "run")
    with pytest.raises(ConfigError, match="neither a distgan run directory"):
        check_init_from(load_config(TINY, [f"train.init_from={tmp_path}"]), tmp_path / "run")


@pytest.fixture(scope="module")
def bigvgan_release(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """A folder as BigVGAN's Hub releases ship it: bigvgan_generator.pt and config.json written by the
    model's own save_pretrained, and bigvgan_discriminator_optimizer.pt by its train.py's
    save_checkpoint, the CQT-D under "mrd" as that code stores it, with one step of AdamW moments."""
    pytest.importorskip("nnAudio", reason="BigVGAN's CQT discriminator needs nnAudio")
    bigvgan = pytest.importorskip("bigvgan.bigvgan", reason="the bigvgan reference package is not installed")
    discriminators = pytest.importorskip("bigvgan.discriminators")
    utils = pytest.importorskip("bigvgan.utils")
    folder = tmp_path_factory.mktemp("bigvgan-release")
    torch.manual_seed(4)
    h = pytest.importorskip("bigvgan.env").AttrDict(BIGVGAN_JSON)
    generator, mpd = bigvgan.BigVGAN(h), discriminators.MultiPeriodDiscriminator(h)
    cqtd = discriminators.MultiScaleSubbandCQTDiscriminator(h)
    optim_g = torch.optim.AdamW(generator.parameters(), 2e-4, betas=[0.8, 0.99])
    optim_d = torch.optim.AdamW(itertools.chain(cqtd.parameters(), mpd.parameters()), 2e-4, betas=[0.8, 0.99])
    _train_one_step(optim_g, list(generator.parameters()), 5)
    _train_one_step(optim_d, list(itertools.chain(cqtd.parameters(), mpd.parameters())), 6)
    generator.save_pretrained(folder)
    utils.save_checkpoint(str(folder / "bigvgan_discriminator_optimizer.pt"),
                          {"mpd": mpd.state_dict(), "mrd": cqtd.state_dict(), "optim_g": optim_g.state_dict(),
                           "optim_d": optim_d.state_dict(), "steps": 7, "epoch": 1})
    return {"folder": folder, "generator": generator.eval(), "mpd": mpd.eval(), "cqtd": cqtd.eval(),
            "optim_g": optim_g, "optim_d": optim_d}


def test_a_bigvgan_release_gives_generator_discriminator_and_adam_moments(bigvgan_release: dict,
                                                                          tmp_path: Path) -> None:
    ref = bigvgan_release
    cfg = load_config(BIGVGAN_TINY, [*BIGVGAN_OVERRIDES, f"train.init_from={ref['folder']}",
                                     "train.init_discriminator=true", "train.init_optimizers=true"])
    check_run(cfg, tmp_path / "run")
    generator, discriminator = _fresh_models(cfg)
    state = load_initial_weights(cfg, tmp_path / "run", generator, discriminator)
    engines = tuple(DDPEngine(name, model, model, optim, "fp32", torch.device("cpu"), 1) for name, model, optim in
                    (("generator", generator, cfg.optim.generator), ("discriminator", discriminator,
                                                                     cfg.optim.discriminator)))
    state.finish(engines, ProcessInfo(0, 1, 0, torch.device("cpu"), True))
    mel = torch.randn(1, 80, 5, generator=torch.Generator().manual_seed(7))
    wave = torch.randn(2, 1, 3000, generator=torch.Generator().manual_seed(8)) * 0.3
    with torch.no_grad():
        torch.testing.assert_close(generator.eval()(mel), ref["generator"](mel), rtol=0, atol=1e-5)
        logits, _ = discriminator.eval()(wave)
        expected = ref["mpd"](wave, wave)[0] + ref["cqtd"](wave, wave)[0]
    assert len(logits) == len(expected) == 3 + 2
    for ours, theirs in zip(logits, expected, strict=True):
        torch.testing.assert_close(ours, theirs.flatten(1), rtol=0, atol=1e-5)
    # Adam moments land on the parameter they belong to, though the reference's optim_d lists CQT-D first.
    pairs = [(engines[0], generator.conv_post.parametrizations.weight.original1, ref["optim_g"],
              ref["generator"].conv_post.weight_v),
             (engines[1], discriminator.mpd.discriminators[2].convs[1].bias, ref["optim_d"],
              ref["mpd"].discriminators[2].convs[1].bias),
             (engines[1], discriminator.cqtd.discriminators[1].conv_post.parametrizations.weight.original0,
              ref["optim_d"], ref["cqtd"].discriminators[1].conv_post.weight_g)]
    for engine, ours, optimizer, theirs in pairs:
        loaded, saved = engine.optimizer.state[ours], optimizer.state[theirs]
        assert torch.equal(loaded["exp_avg"], saved["exp_avg"]) and torch.equal(loaded["exp_avg_sq"], saved["exp_avg_sq"])
        assert float(loaded["step"]) == 1
    assert len(engines[1].optimizer.state) == len(list(discriminator.parameters()))
    assert engines[0].optimizer.param_groups[0]["lr"] == cfg.optim.generator.lr  # the config's, not the file's


def test_a_bigvgan_release_with_another_discriminator_set_is_refused(bigvgan_release: dict, tmp_path: Path) -> None:
    cfg = load_config(BIGVGAN_TINY, [f"train.init_from={bigvgan_release['folder']}", "train.init_discriminator=true"])
    with pytest.raises(ConfigError) as caught:
        check_init_from(cfg, tmp_path / "run")
    assert "config.json discriminator_channel_mult=0.125 but model.discriminator.mpd_channels=[8, 16, 32, 32]" \
        in str(caught.value)


def test_the_discriminator_warm_up_trains_d_against_a_frozen_g() -> None:
    # One mel-only step, then two D-only steps, then both train.
    cfg = load_config(TINY, [*FAST, "train.mel_only_steps=1", "train.d_warmup_steps=2"])
    generator, discriminator = _fresh_models(cfg)
    engines = [DDPEngine(name, model, model, optim, "fp32", torch.device("cpu"), 1) for name, model, optim in
               (("generator", generator, cfg.optim.generator), ("discriminator", discriminator, cfg.optim.discriminator))]
    step = GANStep(cfg, *engines, ProcessInfo(0, 1, 0, torch.device("cpu"), True), MelSpectrogram(cfg.audio),
                   MelSpectrogram.for_loss(cfg.audio), lambda _: contextlib.nullcontext(), lambda _: None)
    wave = torch.randn(2, cfg.data.segment_samples, generator=torch.Generator().manual_seed(9)) * 0.1
    changed = []
    for number in range(4):
        before = [[p.detach().clone() for p in model.parameters()] for model in (generator, discriminator)]
        values, skipped = step([wave], number)
        assert not skipped and ("g/mel" in values) == (number not in (1, 2)) and ("d/total" in values) == (number > 0)
        changed.append(tuple(any(not torch.equal(old, p) for old, p in zip(params, model.parameters(), strict=True))
                             for params, model in zip(before, (generator, discriminator), strict=True)))
    assert changed == [(True, False), (False, True), (False, True), (True, True)]
