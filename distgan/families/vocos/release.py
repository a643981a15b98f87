"""Vocos's release format: the folder Hugging Face hosts (``charactr/vocos-mel-24khz``) and
``vocos.Vocos.from_hparams`` + ``load_state_dict`` read.

- ``config.yaml``: ``feature_extractor``, ``backbone`` and ``head``, each a ``class_path`` and its
  ``init_args`` (``MelSpectrogramFeatures``, ``VocosBackbone``, ``ISTFTHead``);
- ``pytorch_model.bin``: the ``vocos.Vocos`` state dict itself (no wrapping entry), read
  weights-only; it holds the feature extractor's two buffers (the mel filterbank and the STFT
  window), which distgan's front end computes and ``export`` writes back.

A release holds the generator only (no discriminator, no optimizer). What vocos' classes cannot
express (another feature extractor or head, ``fmin``/``fmax`` other than torchaudio's defaults)
is refused with the field. Torch-free: the buffers are computed where they are written.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from distgan.checkpoint.release_config import ReleaseError, family_mismatch

if TYPE_CHECKING:
    from distgan.config import Config, DiscriminatorConfig

FEATURES = "vocos.feature_extractors.MelSpectrogramFeatures"
BACKBONE = "vocos.models.VocosBackbone"
HEAD = "vocos.heads.ISTFTHead"
# (part, init_args key, distgan field) that a release's config.yaml and a run's config must share.
KEYS = (("feature_extractor", "sample_rate", "audio.sample_rate"), ("feature_extractor", "n_fft", "audio.n_fft"),
        ("feature_extractor", "hop_length", "audio.hop_length"), ("feature_extractor", "n_mels", "audio.n_mels"),
        ("feature_extractor", "padding", "model.generator.padding"),
        ("backbone", "input_channels", "audio.n_mels"), ("backbone", "dim", "model.generator.dim"),
        ("backbone", "intermediate_dim", "model.generator.intermediate_dim"),
        ("backbone", "num_layers", "model.generator.num_layers"),
        ("head", "dim", "model.generator.dim"), ("head", "n_fft", "audio.n_fft"),
        ("head", "hop_length", "audio.hop_length"), ("head", "padding", "model.generator.padding"))


def _field(cfg: Config, dotted: str) -> Any:
    value: Any = cfg
    for part in dotted.split("."):
        value = getattr(value, part)
    return value


class VocosRelease:
    name = "vocos"
    label = "Vocos"
    family = "vocos"
    fixed_files = ("pytorch_model.bin", "")  # no discriminator file
    config_file = "config.yaml"
    generator_key: str | None = None  # pytorch_model.bin is the state dict

    def claims(self, config: dict[str, Any], generator: Path) -> bool:
        return generator.name == self.fixed_files[0]

    def files(self, step: int) -> tuple[str, str]:
        return self.fixed_files

    def second_set_kind(self, config: dict[str, Any], config_path: Path) -> str:
        raise ReleaseError(f"{config_path}: a Vocos release holds no discriminator")

    def generator_problem(self, cfg: Config) -> str | None:
        audio = cfg.audio
        if (audio.fmin, audio.fmax) != (0.0, None):
            return (f"audio.fmin={audio.fmin}, audio.fmax={audio.fmax}: vocos' MelSpectrogramFeatures uses "
                    "torchaudio's full band (0 and null)")
        return None

    def discriminator_problems(self, cfg: DiscriminatorConfig) -> list[str]:
        return ["a Vocos release holds the generator only (vocos.Vocos has no discriminator)"]

    def differences(self, config: dict[str, Any], cfg: Config, second_set: str | None) -> list[str]:
        if found := family_mismatch(self.family, cfg):
            return found
        expected = {"feature_extractor": FEATURES, "backbone": BACKBONE, "head": HEAD}
        for part, class_path in expected.items():
            got = (config.get(part) or {}).get("class_path")
            if got != class_path:
                found.append(f"config.yaml {part}.class_path={got!r}, but distgan's Vocos is {class_path}")
        if found:
            return found
        for part, key, dotted in KEYS:
            value, ours = (config[part].get("init_args") or {}).get(key), _field(cfg, dotted)
            if value is not None and value != ours:
                found.append(f"config.yaml {part}.init_args.{key}={value!r} but {dotted}={ours!r}")
        scale = config["backbone"].get("init_args", {}).get("layer_scale_init_value")
        if scale is not None and scale != cfg.model.generator.layer_scale_init_value:
            found.append(f"config.yaml backbone.init_args.layer_scale_init_value={scale!r} but "
                         f"model.generator.layer_scale_init_value={cfg.model.generator.layer_scale_init_value!r}")
        return found

    def generator_file(self, state: dict[str, Any], cfg: Config) -> dict[str, Any]:
        """The vocos.Vocos state dict: the feature extractor's buffers, then the generator's."""
        from distgan.families.vocos.parts import front_end

        features = front_end(cfg.model.generator, cfg.audio)
        return {f"feature_extractor.{key}": value for key, value in features.state_dict().items()} | state

    def hparams(self, cfg: Config) -> dict[str, Any]:
        """config.yaml as ``vocos.Vocos.from_hparams`` reads it."""
        g, audio = cfg.model.generator, cfg.audio
        backbone = {"input_channels": audio.n_mels, "dim": g.dim, "intermediate_dim": g.intermediate_dim,
                    "num_layers": g.num_layers}
        if g.layer_scale_init_value is not None:
            backbone["layer_scale_init_value"] = g.layer_scale_init_value
        return {
            "feature_extractor": {"class_path": FEATURES, "init_args": {
                "sample_rate": audio.sample_rate, "n_fft": audio.n_fft, "hop_length": audio.hop_length,
                "n_mels": audio.n_mels, "padding": g.padding}},
            "backbone": {"class_path": BACKBONE, "init_args": backbone},
            "head": {"class_path": HEAD, "init_args": {"dim": g.dim, "n_fft": audio.n_fft,
                                                        "hop_length": audio.hop_length, "padding": g.padding}}}

    def config_text(self, cfg: Config, world_size: int) -> str:
        return yaml.safe_dump(self.hparams(cfg), sort_keys=False)


VOCOS_RELEASE = VocosRelease()
