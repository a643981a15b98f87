"""NVIDIA/BigVGAN's release format: HiFi-GAN's (its ``train.py`` is a fork) with its own keys and files.

- Files: ``bigvgan_generator.pt`` (``{"generator"}``, what ``from_pretrained`` reads from a folder)
  and ``bigvgan_discriminator_optimizer.pt`` (``{"mpd", "mrd", "optim_g", "optim_d", "steps",
  "epoch"}``), both of which its ``train.py`` also resumes from; its own runs also write
  ``g_``/``do_`` pairs. ``"mrd"`` holds MRD or CQT-D, whichever ``use_cqtd_instead_of_mrd`` picks,
  as its ``train.py`` names it (``"cqtd"`` is read too).
- ``config.json``: its ``configs/*.json`` keys; its ``activation`` key tells it from HiFi-GAN's.
  Its MPD widths are ``[32, 128, 512, 1024, 1024]`` times ``discriminator_channel_mult``; no MSD.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from distgan.checkpoint.release_config import Differences, ReleaseError
from distgan.families.hifigan.release import HiFiGANRelease

if TYPE_CHECKING:
    from distgan.config import Config, DiscriminatorConfig

BIGVGAN_G = "bigvgan_generator.pt"
BIGVGAN_DO = "bigvgan_discriminator_optimizer.pt"
MPD_WIDTHS = [32, 128, 512, 1024, 1024]  # times discriminator_channel_mult
MRD_WIDTH = 32  # times mrd_channel_mult
# Its own generator keys and the defaults its code takes when a config leaves them out (None: required).
GENERATOR_DEFAULTS = {"activation": None, "snake_logscale": None, "use_tanh_at_final": True,
                      "use_bias_at_final": True}
# Its CQT-D keys and their defaults in its code (``cqtd_normalize_volume`` is read the same way).
CQTD_DEFAULTS = {"cqtd_filters": 32, "cqtd_max_filters": 1024, "cqtd_filters_scale": 1, "cqtd_dilations": [1, 2, 4],
                 "cqtd_hop_lengths": [512, 256, 256], "cqtd_n_octaves": [9, 9, 9],
                 "cqtd_bins_per_octaves": [24, 36, 48], "cqtd_normalize_volume": False}


def mpd_mult(cfg: DiscriminatorConfig) -> float | None:
    """BigVGAN's ``discriminator_channel_mult`` that gives ``mpd_channels``, or None."""
    mult = cfg.mpd_channels[0] / MPD_WIDTHS[0]
    widths = [int(width * mult) for width in MPD_WIDTHS]
    return mult if widths == cfg.mpd_channels else None


class BigVGANRelease(HiFiGANRelease):
    name = "bigvgan"
    label = "BigVGAN"
    family = "bigvgan"
    fixed_files = (BIGVGAN_G, BIGVGAN_DO)

    def claims(self, config: dict[str, Any], generator: Path) -> bool:
        return "activation" in config or generator.name == BIGVGAN_G

    def files(self, step: int) -> tuple[str, str]:
        return BIGVGAN_G, BIGVGAN_DO

    def second_set_kind(self, config: dict[str, Any], config_path: Path) -> str:
        if config.get("use_mbd_instead_of_mrd"):
            raise ReleaseError(f"{config_path}: use_mbd_instead_of_mrd: distgan has no multi-band "
                               "discriminator, so this release's discriminator cannot be loaded (leave "
                               "train.init_discriminator false to fine-tune its generator with a fresh one)")
        return "cqtd" if config.get("use_cqtd_instead_of_mrd") else "mrd"

    def stored_second_set(self, kind: str, content: dict[str, Any]) -> str:
        # Its train.py keeps the name "mrd" for whichever second set it trains.
        return "mrd" if kind == "cqtd" and "cqtd" not in content else kind

    def discriminator_keys(self, cfg: DiscriminatorConfig) -> list[tuple[str, str]]:
        second = next(kind for kind in cfg.kinds if kind != "mpd")
        return [(second, "mrd"), ("mpd", "mpd")]

    def generator_problem(self, cfg: Config) -> str | None:
        return None

    def discriminator_problems(self, cfg: DiscriminatorConfig) -> list[str]:
        kinds = set(cfg.kinds)
        if len(cfg.kinds) != 2 or kinds not in ({"mpd", "mrd"}, {"mpd", "cqtd"}):
            return [f"model.discriminator.kinds={list(cfg.kinds)}, but BigVGAN's code trains MPD with MRD or "
                    "with CQT-D (no MSD)"]
        problems = []
        if mpd_mult(cfg) is None:
            problems.append(f"model.discriminator.mpd_channels={cfg.mpd_channels}, but BigVGAN's MPD has "
                            f"{MPD_WIDTHS} times one multiplier")
        if "mrd" in kinds and len(cfg.mrd_resolutions) != 3:
            problems.append(f"model.discriminator.mrd_resolutions has {len(cfg.mrd_resolutions)} entries, "
                            "but BigVGAN's MRD takes exactly 3")
        if "cqtd" in kinds and min(cfg.cqtd_filters_scale * cfg.cqtd_filters, cfg.cqtd_max_filters) != cfg.cqtd_filters:
            problems.append(f"model.discriminator.cqtd_filters_scale={cfg.cqtd_filters_scale}: BigVGAN's CQT-D "
                            "then widens its first dilated layer's input beyond cqtd_filters (only 1 matches)")
        return problems

    def extra_config(self, cfg: Config) -> dict[str, Any]:
        """The generator's activation and output options, the losses, and the discriminators (when
        the format can express them)."""
        generator, d, loss = cfg.model.generator, cfg.model.discriminator, cfg.loss
        keys: dict[str, Any] = {"use_tanh_at_final": generator.use_tanh_at_final,
                                "use_bias_at_final": generator.use_bias_at_final,
                                "activation": generator.activation, "snake_logscale": generator.snake_logscale}
        if not self.discriminator_problems(d):
            keys |= {"mpd_reshapes": d.periods, "use_spectral_norm": d.mpd_use_spectral_norm,
                     "discriminator_channel_mult": mpd_mult(d), "use_cqtd_instead_of_mrd": "cqtd" in d.kinds}
            if "mrd" in d.kinds:
                keys |= {"resolutions": d.mrd_resolutions, "mrd_channel_mult": d.mrd_channels / MRD_WIDTH,
                         "mrd_use_spectral_norm": d.mrd_use_spectral_norm}
            else:
                keys |= {name: getattr(d, name) for name in CQTD_DEFAULTS}
        keys |= {"use_multiscale_melloss": loss.mel == "multiscale", "lambda_melloss": loss.mel_weight}
        if cfg.optim.generator.grad_clip is not None:
            keys["clip_grad_norm"] = cfg.optim.generator.grad_clip
        return keys

    def generator_differences(self, found: Differences) -> None:
        super().generator_differences(found)
        for key, default in GENERATOR_DEFAULTS.items():
            found.key(key, f"model.generator.{key}", *(() if default is None else (default,)))

    def discriminator_differences(self, found: Differences, second_set: str) -> None:
        found.fixed("the release's discriminator sets", ["mpd", second_set], "model.discriminator.kinds")
        found.key("mpd_reshapes", "model.discriminator.periods")
        found.key("use_spectral_norm", "model.discriminator.mpd_use_spectral_norm")
        found.key("discriminator_channel_mult", "model.discriminator.mpd_channels",
                  convert=lambda mult: [int(c * mult) for c in MPD_WIDTHS])
        if second_set == "mrd":
            found.key("resolutions", "model.discriminator.mrd_resolutions")
            mult = found.json.get("mrd_channel_mult", found.json.get("discriminator_channel_mult", 1))
            found.fixed(f"MRD's width ({MRD_WIDTH} x channel mult {mult})", int(MRD_WIDTH * mult),
                        "model.discriminator.mrd_channels")
            spectral = found.json.get("mrd_use_spectral_norm", found.json.get("use_spectral_norm", False))
            found.fixed("MRD's use_spectral_norm", spectral, "model.discriminator.mrd_use_spectral_norm")
        elif second_set == "cqtd":
            for key, default in CQTD_DEFAULTS.items():
                found.key(key, f"model.discriminator.{key}", default)


BIGVGAN_RELEASE = BigVGANRelease()
