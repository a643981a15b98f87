"""The model and mel-loss settings added for BigVGAN: old configs keep their meaning, bad values are
refused naming the key."""

from __future__ import annotations

import pytest
import yaml

from distgan.config import ConfigError, config_from_yaml_text, dump_config, load_config
from tests.train.helpers import REPO_ROOT

CONFIGS = REPO_ROOT / "configs"
# Keys added with the BigVGAN family: a config or checkpoint written before them has none.
NEW_KEYS = {
    "model.generator": ["family", "activation", "snake_logscale", "use_tanh_at_final", "use_bias_at_final",
                        "activation_checkpointing"],
    "model.discriminator": ["kinds", "mpd_use_spectral_norm", "mrd_resolutions", "mrd_channels",
                            "mrd_use_spectral_norm", "cqtd_hop_lengths", "cqtd_n_octaves", "cqtd_bins_per_octaves",
                            "cqtd_filters", "cqtd_max_filters", "cqtd_filters_scale", "cqtd_dilations",
                            "cqtd_normalize_volume"],
    "loss": ["mel", "multiscale_mel"],
}


@pytest.mark.parametrize("recipe", ["hifigan_v1.yaml", "hifigan_v3.yaml", "tiny.yaml"])
def test_configs_without_the_new_keys_mean_hifigan(recipe: str) -> None:
    cfg = load_config(CONFIGS / recipe)
    saved = yaml.safe_load(dump_config(cfg))
    for section, keys in NEW_KEYS.items():
        node = saved
        for part in section.split("."):
            node = node[part]
        for key in keys:
            node.pop(key, None)  # BigVGAN's generator keys are no longer in a HiFi-GAN config's dump
    old = config_from_yaml_text(yaml.safe_dump(saved))  # a checkpoint's config.yaml from before
    assert old == cfg
    assert (old.model.generator.family, old.model.discriminator.kinds, old.loss.mel) == \
        ("hifigan", ["mpd", "msd"], "single")


@pytest.mark.parametrize(("overrides", "message"), [
    (["model.generator.activation=snake"],
     "model.generator.activation only applies to model.generator.family: bigvgan"),
    (["model.generator.family=bigvgan_v2"], "model.generator.family: 'bigvgan_v2' is not one of ['hifigan', 'bigvgan', 'wavegan', 'vocos', 'dac', 'encodec']"),
    (["model.discriminator.kinds=[mpd, mrd, mpd]"], "model.discriminator.kinds lists a set twice"),
    (["model.discriminator.kinds=[mpd, cqt]"], "model.discriminator.kinds[1]: 'cqt' is not one of"),
    (["model.discriminator.kinds=[]"], "the discriminator set is empty"),
    (["model.discriminator.kinds=[mrd]", "model.discriminator.mrd_resolutions=[[1024, 120]]"],
     "model.discriminator.mrd_resolutions: each entry is [n_fft, hop_length, win_length]"),
    (["model.discriminator.kinds=[cqtd]", "model.discriminator.cqtd_n_octaves=[9, 9]"],
     "need one entry per scale"),
    (["model.discriminator.kinds=[mpd, cqtd]", "model.discriminator.cqtd_n_octaves=[10, 9, 9]"],
     "model.discriminator.cqtd_n_octaves: 10 octaves of 24 bins"),
    (["loss.mel=multi"], "loss.mel: 'multi' is not one of ['single', 'multiscale']"),
    (["loss.mel=multiscale", "loss.multiscale_mel.n_mels=[5, 10]"],
     "loss.multiscale_mel.n_mels and window_lengths need one entry per scale"),
    (["loss.mel=multiscale", "data.segment_samples=768"], "must exceed half the longest loss.multiscale_mel"),
    (["model.generator.upsample_kernel_sizes=[16, 16, 4, 5]"], "must differ from its rate by an even number"),
])
def test_bad_model_settings_name_the_key(overrides: list[str], message: str) -> None:
    with pytest.raises(ConfigError) as err:
        load_config(CONFIGS / "hifigan_v1.yaml", overrides)
    assert message in str(err.value)


def test_nine_cqt_octaves_need_a_sample_rate_above_16_5_khz() -> None:
    bigvgan = ["model.discriminator.kinds=[mpd, cqtd]", "audio.fmax=null"]
    load_config(CONFIGS / "hifigan_v1.yaml", [*bigvgan, "audio.sample_rate=16600"])
    with pytest.raises(ConfigError, match="above audio.sample_rate=16000"):
        load_config(CONFIGS / "hifigan_v1.yaml", [*bigvgan, "audio.sample_rate=16000"])
