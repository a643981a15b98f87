"""configs/dac_{44,24,16}khz.yaml carry descript-audio-codec's official recipes (conf/final/*.yml and
the loop of scripts/train.py), and at the 44.1 kHz layout distgan's codec and discriminator hold
DAC's parameter counts. The official values are written out here, so the test needs neither the
network nor a copy of that repository."""

from __future__ import annotations

import pytest
import torch

from distgan.config import Config, ConfigError, load_config
from distgan.families import build_models, family_of
from distgan.inference.codec import bitrate
from tests.train.helpers import REPO_ROOT

CONFIGS = REPO_ROOT / "configs"
# The values conf/final/44khz.yml, 24khz.yml and 16khz.yml of descriptinc/descript-audio-codec
# (commit c7cfc5d) share, in their own key names.
SHARED = {
    "DAC.encoder_dim": 64, "DAC.decoder_dim": 1536, "DAC.codebook_size": 1024, "DAC.codebook_dim": 8,
    "DAC.quantizer_dropout": 0.5,
    "Discriminator.rates": [], "Discriminator.periods": [2, 3, 5, 7, 11],
    "Discriminator.fft_sizes": [2048, 1024, 512],
    "Discriminator.bands": [[0.0, 0.1], [0.1, 0.25], [0.25, 0.5], [0.5, 0.75], [0.75, 1.0]],
    "AdamW.betas": [0.8, 0.99], "AdamW.lr": 0.0001, "ExponentialLR.gamma": 0.999996,
    "amp": False, "num_iters": 400000, "valid_freq": 1000, "seed": 0,
    "lambdas": {"mel/loss": 15.0, "adv/feat_loss": 2.0, "adv/gen_loss": 1.0, "vq/commitment_loss": 0.25,
                "vq/codebook_loss": 1.0},
    "MelSpectrogramLoss.n_mels": [5, 10, 20, 40, 80, 160, 320],
    "MelSpectrogramLoss.window_lengths": [32, 64, 128, 256, 512, 1024, 2048],
    "MelSpectrogramLoss.mel_fmin": [0] * 7, "MelSpectrogramLoss.mel_fmax": [None] * 7,
    "MelSpectrogramLoss.pow": 1.0, "MelSpectrogramLoss.clamp_eps": 1.0e-5, "MelSpectrogramLoss.mag_weight": 0.0,
    "batch_size": 72, "train/AudioDataset.duration": 0.38,
}
# What each file sets apart.
OFFICIAL = {
    "dac_44khz": {**SHARED, "DAC.sample_rate": 44100, "DAC.encoder_rates": [2, 4, 8, 8],
                  "DAC.decoder_rates": [8, 8, 4, 2], "DAC.n_codebooks": 9},
    "dac_24khz": {**SHARED, "DAC.sample_rate": 24000, "DAC.encoder_rates": [2, 4, 5, 8],
                  "DAC.decoder_rates": [8, 5, 4, 2], "DAC.n_codebooks": 32},
    "dac_16khz": {**SHARED, "DAC.sample_rate": 16000, "DAC.encoder_rates": [2, 4, 5, 8],
                  "DAC.decoder_rates": [8, 5, 4, 2], "DAC.n_codebooks": 12},
}
# scripts/train.py's train_loop (same commit): clip_grad_norm_ of D at 10.0 and of G at 1e3, both
# schedulers stepped after every update; torch.optim.AdamW's eps and weight decay, which it keeps.
TRAIN_LOOP = {"grad_clip_d": 10.0, "grad_clip_g": 1e3, "eps": 1e-8, "weight_decay": 0.01}
# dac.model.discriminator's widths (MPD 32 .. 1024, MRD 32), which the yml files leave at their defaults.
CODE_DEFAULTS = {"mpd_channels": [32, 128, 512, 1024, 1024], "mrd_channels": 32}
# The one value a recipe changes: 16khz.yml's 0.38 s are 6080 samples, 19 whole frames of hop 320,
# which the decoder (a stride-5 transposed convolution) returns 8 samples short, DAC's as distgan's.
DEVIATIONS = {"dac_16khz": {"segment_samples": 6240}}
# sum(p.numel()) of dac.model.DAC() and dac.model.Discriminator() at the 44khz.yml layout.
DAC_44KHZ_PARAMETERS = {"generator": 76_651_890, "discriminator": 42_519_760}


def recipe(name: str) -> Config:
    return load_config(CONFIGS / f"{name}.yaml")


@pytest.mark.parametrize("name", sorted(OFFICIAL))
def test_codec_and_discriminator_are_the_official_ones(name: str) -> None:
    cfg, o = recipe(name), OFFICIAL[name]
    g = cfg.model.generator
    assert family_of(cfg).name == "dac" and cfg.audio.sample_rate == o["DAC.sample_rate"]
    assert (g.encoder_dim, g.encoder_rates, g.latent_dim, g.decoder_dim, g.decoder_rates) == (
        o["DAC.encoder_dim"], o["DAC.encoder_rates"], None, o["DAC.decoder_dim"], o["DAC.decoder_rates"])
    assert (g.n_codebooks, g.codebook_size, g.codebook_dim, g.quantizer_dropout) == (
        o["DAC.n_codebooks"], o["DAC.codebook_size"], o["DAC.codebook_dim"], o["DAC.quantizer_dropout"])
    assert o["Discriminator.rates"] == []  # no MSD, which distgan's DAC discriminator does not have
    assert (g.mpd_periods, g.mrd_fft_sizes, g.mrd_bands) == (
        o["Discriminator.periods"], o["Discriminator.fft_sizes"], o["Discriminator.bands"])
    assert (g.mpd_channels, g.mrd_channels) == (CODE_DEFAULTS["mpd_channels"], CODE_DEFAULTS["mrd_channels"])
    assert all(1 <= k <= g.n_codebooks for k in g.val_codebooks)


@pytest.mark.parametrize("name", sorted(OFFICIAL))
def test_losses_are_the_official_ones(name: str) -> None:
    cfg, o = recipe(name), OFFICIAL[name]
    loss, lambdas = cfg.loss, o["lambdas"]
    assert (loss.adversarial, loss.generator_adversarial) == ("lsgan", "same")  # dac.nn.loss.GANLoss
    assert (loss.mel_weight, loss.adv_weight, loss.fm_weight) == (
        lambdas["mel/loss"], lambdas["adv/gen_loss"], lambdas["adv/feat_loss"])
    assert (cfg.model.generator.commitment_weight, cfg.model.generator.codebook_weight) == (
        lambdas["vq/commitment_loss"], lambdas["vq/codebook_loss"])
    ms = loss.multiscale_mel
    assert loss.mel == "multiscale" and o["MelSpectrogramLoss.mag_weight"] == 0.0  # distgan has the log term only
    assert (ms.n_mels, ms.window_lengths, ms.clamp_eps, ms.power) == (
        o["MelSpectrogramLoss.n_mels"], o["MelSpectrogramLoss.window_lengths"], o["MelSpectrogramLoss.clamp_eps"],
        o["MelSpectrogramLoss.pow"])
    # Every scale spans [audio.fmin, audio.fmax_loss or Nyquist].
    assert {cfg.audio.fmin} == set(o["MelSpectrogramLoss.mel_fmin"])
    assert {cfg.audio.fmax_loss} == set(o["MelSpectrogramLoss.mel_fmax"])


@pytest.mark.parametrize("name", sorted(OFFICIAL))
def test_optimisation_data_and_schedule_are_the_official_ones(name: str) -> None:
    cfg, o = recipe(name), OFFICIAL[name]
    for optim, clip in ((cfg.optim.generator, TRAIN_LOOP["grad_clip_g"]),
                        (cfg.optim.discriminator, TRAIN_LOOP["grad_clip_d"])):
        assert (optim.lr, optim.betas, optim.eps, optim.weight_decay) == (
            o["AdamW.lr"], o["AdamW.betas"], TRAIN_LOOP["eps"], TRAIN_LOOP["weight_decay"])
        assert (optim.schedule, optim.lr_decay, optim.lr_decay_every, optim.warmup_steps) == (
            "exponential", o["ExponentialLR.gamma"], "step", 0)
        assert optim.grad_clip == clip
    # audiotools' AudioDataset cuts int(duration * sample_rate) samples and zero-pads shorter files.
    official_segment = int(o["train/AudioDataset.duration"] * o["DAC.sample_rate"])
    assert cfg.data.segment_samples == DEVIATIONS.get(name, {}).get("segment_samples", official_segment)
    assert cfg.model.generator.decoded_samples(cfg.data.segment_samples) >= cfg.data.segment_samples
    assert (cfg.data.batch_size, cfg.data.short_clips) == (o["batch_size"], "pad")
    assert (cfg.train.max_steps, cfg.train.seed, cfg.log.val_every_steps) == (
        o["num_iters"], o["seed"], o["valid_freq"])
    assert o["amp"] is False and cfg.train.precision == "fp32"
    assert (cfg.train.d_steps_per_g, cfg.train.mel_only_steps) == (1, 0)  # D and G every iteration, from step 0


def test_the_recipes_bitrates_are_the_released_models() -> None:
    kbps = {}
    for name in OFFICIAL:
        g = recipe(name).model.generator
        kbps[name] = bitrate(g.n_codebooks, g.codebook_size, OFFICIAL[name]["DAC.sample_rate"] / g.hop_length()) / 1000
    assert kbps == {"dac_44khz": pytest.approx(7.752, abs=1e-3), "dac_24khz": 24.0, "dac_16khz": 6.0}


def test_the_44khz_codec_and_discriminator_have_dacs_parameter_counts() -> None:
    with torch.device("meta"):  # the shapes only: no 119M parameters drawn
        generator, discriminator = build_models(recipe("dac_44khz"))
    counts = {"generator": sum(p.numel() for p in generator.parameters()),
              "discriminator": sum(p.numel() for p in discriminator.parameters())}
    assert counts == DAC_44KHZ_PARAMETERS


def test_dacs_16khz_clip_length_decodes_short_and_is_refused() -> None:
    with pytest.raises(ConfigError, match="decodes it to 6072 samples.*is 6240"):
        load_config(CONFIGS / "dac_16khz.yaml", ["data.segment_samples=6080"])
    # The arithmetic is the codec's: the 16 kHz strides at a width that builds in a moment.
    narrow = ["model.generator.encoder_dim=2", "model.generator.decoder_dim=16", "model.generator.n_codebooks=1",
              "model.generator.val_codebooks=[1]"]
    cfg = load_config(CONFIGS / "dac_16khz.yaml", narrow)
    generator, _ = build_models(cfg)
    section = cfg.model.generator
    with torch.no_grad():
        for samples in (6080, 6240, 9120 * 2 // 3, 6393):
            encoded = generator.encoder(generator.pad(torch.zeros(1, 1, samples)))
            decoded = generator.decoder(generator.quantizer(encoded)[0]).shape[-1]
            assert decoded == section.decoded_samples(samples)
    assert section.decoded_samples(6080) == 6072 and section.decoded_samples(6240) == 6392
