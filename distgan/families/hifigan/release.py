"""jik876/hifi-gan's release format: what its ``train.py`` writes and reads, held against distgan's config.

- Files: ``g_XXXXXXXX`` (``{"generator"}``), ``do_XXXXXXXX`` (``{"mpd", "msd", "optim_g",
  "optim_d", "steps", "epoch"}``) and ``config.json`` (its ``config_v1.json`` keys). Both files are
  pickled dicts of tensors and numbers, read weights-only (``distgan.checkpoint.releases``).
- Its code fixes more than the config says: 80 mel bands, MPD and MSD at the paper's sizes, three
  dilations per type-1 residual block and two per type-2 block. A model the format cannot express
  is refused with the field, its value and what the format needs.

BigVGAN's ``train.py`` is a fork of this one: ``distgan.families.bigvgan.release`` subclasses
``HiFiGANRelease`` and overrides what differs. The format objects are torch-free.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from distgan.checkpoint.release_config import Differences, release_differences

if TYPE_CHECKING:
    from distgan.config import Config, DiscriminatorConfig

HIFIGAN_N_MELS = 80  # HiFi-GAN's Generator builds its input convolution for 80 bands
HIFIGAN_DILATIONS = {"1": 3, "2": 2}  # dilations its ResBlock1 / ResBlock2 use, whatever the config lists
HIFIGAN_D = {"kinds": ["mpd", "msd"], "periods": [2, 3, 5, 7, 11], "mpd_channels": [32, 128, 512, 1024, 1024],
             "mpd_use_spectral_norm": False, "msd_scales": 3,
             "msd_channels": [128, 128, 256, 512, 1024, 1024, 1024]}
# Generator keys both codes read from config.json under distgan's own field names.
GENERATOR_KEYS = ("resblock", "upsample_rates", "upsample_kernel_sizes", "upsample_initial_channel",
                  "resblock_kernel_sizes", "resblock_dilation_sizes")
DIST_CONFIG = {"dist_backend": "nccl", "dist_url": "tcp://localhost:54321", "world_size": 1}


class HiFiGANRelease:
    name = "hifigan"
    label = "HiFi-GAN"
    family = "hifigan"  # the distgan family whose generator the files hold
    # The release's own file names (generator, discriminator-and-optimizer; "" where it ships no
    # discriminator file), where it has them.
    fixed_files: tuple[str, str] | None = None
    config_file = "config.json"  # the hyperparameters beside the weights
    generator_key: str | None = "generator"  # the generator file's entry (None: the file is the state dict)

    def claims(self, config: dict[str, Any], generator: Path) -> bool:
        """Whether a folder's ``config.json`` (and generator file) are this format's rather than
        the default one's (the first registered format claims what no other does)."""
        return False

    def files(self, step: int) -> tuple[str, str]:
        """The generator's and the discriminator-and-optimizer file's names."""
        return f"g_{step:08d}", f"do_{step:08d}"

    def second_set_kind(self, config: dict[str, Any], config_path: Path) -> str:
        """Which distgan discriminator set the files' second set is."""
        return "msd"

    def stored_second_set(self, kind: str, content: dict[str, Any]) -> str:
        """The key the discriminator file keeps ``kind`` under."""
        return kind

    def discriminator_keys(self, cfg: DiscriminatorConfig) -> list[tuple[str, str]]:
        """``(distgan kind, key in the file)`` in the order the reference's D optimizer holds them
        (its train script chains MSD's parameters before MPD's)."""
        return [("msd", "msd"), ("mpd", "mpd")]

    def generator_problem(self, cfg: Config) -> str | None:
        """Why the format cannot hold this generator (of this format's family), or None."""
        generator = cfg.model.generator
        if cfg.audio.n_mels != HIFIGAN_N_MELS:
            return f"audio.n_mels={cfg.audio.n_mels}: HiFi-GAN's Generator takes {HIFIGAN_N_MELS} mel bands"
        wanted = HIFIGAN_DILATIONS[generator.resblock]
        for i, dilations in enumerate(generator.resblock_dilation_sizes):
            if len(dilations) != wanted:
                return (f"model.generator.resblock_dilation_sizes[{i}]={dilations}: HiFi-GAN's ResBlock"
                        f"{generator.resblock} uses exactly {wanted} dilations")
        return None

    def discriminator_problems(self, cfg: DiscriminatorConfig) -> list[str]:
        """Why the format cannot hold these discriminators (empty: it can)."""
        kinds = [] if sorted(cfg.kinds) == ["mpd", "msd"] else [
            f"model.discriminator.kinds={list(cfg.kinds)}, but HiFi-GAN's code trains MPD and MSD"]
        wanted = {key: value for key, value in HIFIGAN_D.items() if key != "kinds"}
        return kinds + [f"model.discriminator.{field}={getattr(cfg, field)}, but HiFi-GAN's code has {value}"
                        for field, value in wanted.items() if getattr(cfg, field) != value]

    def extra_config(self, cfg: Config) -> dict[str, Any]:
        """``config.json`` keys beyond the two codes' common ones."""
        return {}

    def config_json(self, cfg: Config, world_size: int) -> dict[str, Any]:
        """``config.json`` for the reference code: the model, the mel front end, and the training
        settings its ``train.py`` reads (batch size over all ``world_size`` ranks, as it divides it)."""
        optim, audio, g = cfg.optim.generator, cfg.audio, cfg.model.generator
        config: dict[str, Any] = {
            "resblock": g.resblock, "num_gpus": 0, "batch_size": cfg.data.batch_size * world_size,
            "learning_rate": optim.lr, "adam_b1": optim.betas[0], "adam_b2": optim.betas[1],
            "lr_decay": optim.lr_decay, "seed": cfg.train.seed,
            **{key: getattr(g, key) for key in GENERATOR_KEYS if key != "resblock"}}
        config |= self.extra_config(cfg)
        return config | {
            "segment_size": cfg.data.segment_samples, "num_mels": audio.n_mels, "num_freq": audio.n_fft // 2 + 1,
            "n_fft": audio.n_fft, "hop_size": audio.hop_length, "win_size": audio.win_length,
            "sampling_rate": audio.sample_rate, "fmin": audio.fmin, "fmax": audio.fmax,
            "fmax_for_loss": audio.fmax_loss,
            "num_workers": cfg.data.num_workers, "dist_config": DIST_CONFIG}

    def differences(self, config: dict[str, Any], cfg: Config, second_set: str | None) -> list[str]:
        """Every setting in which the release's config and ``cfg`` differ (``release_differences``)."""
        return release_differences(self, config, cfg, second_set)

    def generator_file(self, state: dict[str, Any], cfg: Config) -> dict[str, Any]:
        """What the generator file holds, given the generator's state dict under the reference's names."""
        return {"generator": state}

    def config_text(self, cfg: Config, world_size: int) -> str:
        return json.dumps(self.config_json(cfg, world_size), indent=4) + "\n"

    def generator_differences(self, found: Differences) -> None:
        """The generator keys of a release's ``config.json`` against the config (beyond the family)."""
        for key in GENERATOR_KEYS:
            found.key(key, f"model.generator.{key}", convert=str if key == "resblock" else None)

    def discriminator_differences(self, found: Differences, second_set: str) -> None:
        for name, value in HIFIGAN_D.items():
            found.fixed(f"HiFi-GAN's {name} (fixed in its code)", value, f"model.discriminator.{name}")


HIFIGAN_RELEASE = HiFiGANRelease()
