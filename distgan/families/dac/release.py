"""DAC's release format: the ``.pth`` file that descript-audio-codec publishes
(``weights_44khz_8kbps_0.0.1.pth``) and ``dac.DAC.load`` reads.

- One file, a pickled dict ``{"state_dict": ..., "metadata": {"kwargs": {...}}}``: the
  ``dac.model.DAC`` state dict (weight norm as ``weight_g``/``weight_v``, keys as distgan's codec
  modules: ``distgan.models.reference_weights``) and the keyword arguments ``DAC.__init__`` is
  called with (``audiotools.ml.BaseModel.save(path, package=False)``). The hyperparameters travel
  inside the weights file, so there is no config file beside it.
- ``DAC.save``'s default, a ``torch.package`` archive, holds Python code that loading it would run:
  it is refused with the file's name, as is any pickle that needs code (the file is read with
  ``torch.load(weights_only=True)``).
- ``DAC.save_to_folder``'s layout is read too: a folder holding ``dac/weights.pth`` (or
  ``weights.pth``). Its ``discriminator/weights.pth`` is not: a release is the codec alone, as the
  published files are (``train.init_from`` trains a fresh discriminator). ``distgan export
  --format dac OUT.pth`` writes the one file; a folder ``OUT`` gets ``OUT/dac/weights.pth``, which
  ``DAC.load_from_folder(OUT, package=False)`` reads.

``quantizer_dropout`` is written but not checked: it changes no weight, and ``DAC.save`` records
DAC's default (``False``) rather than what a model was trained with, since ``DAC`` keeps no
attribute of it. Torch-free until a file is read.
"""

from __future__ import annotations

import zipfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from distgan.checkpoint.release_config import ReleaseError, family_mismatch, load_release_file

if TYPE_CHECKING:
    from distgan.config import AudioConfig, Config, DiscriminatorConfig
    from distgan.families.dac.config import DACConfig

WEIGHTS = "weights.pth"
FOLDER_WEIGHTS = "dac/weights.pth"  # BaseModel.save_to_folder: <folder>/<class name, lower case>/weights.pth
# dac.DAC.__init__'s defaults: what a kwargs entry left out means.
DAC_DEFAULTS = {"encoder_dim": 64, "encoder_rates": [2, 4, 8, 8], "latent_dim": None, "decoder_dim": 1536,
                "decoder_rates": [8, 8, 4, 2], "n_codebooks": 9, "codebook_size": 1024, "codebook_dim": 8,
                "quantizer_dropout": False, "sample_rate": 44100}
# kwargs that must equal a distgan field (latent_dim is compared with the resolved width).
KEYS = (("encoder_dim", "model.generator.encoder_dim"), ("encoder_rates", "model.generator.encoder_rates"),
        ("decoder_dim", "model.generator.decoder_dim"), ("decoder_rates", "model.generator.decoder_rates"),
        ("n_codebooks", "model.generator.n_codebooks"), ("codebook_size", "model.generator.codebook_size"),
        ("codebook_dim", "model.generator.codebook_dim"), ("sample_rate", "audio.sample_rate"))


def _field(cfg: Config, dotted: str) -> Any:
    value: Any = cfg
    for part in dotted.split("."):
        value = getattr(value, part)
    return value


def _is_torch_package(path: Path) -> bool:
    """A ``torch.package`` archive: a zip with ``<name>/.data/extern_modules`` and Python sources
    (``torch.save``'s zip holds ``<name>/data.pkl`` instead)."""
    if not zipfile.is_zipfile(path):
        return False
    with zipfile.ZipFile(path) as archive:
        names = archive.namelist()
    return any(name.endswith("/.data/extern_modules") for name in names) \
        and not any(name.endswith("/data.pkl") for name in names)


class DACRelease:
    name = "dac"
    label = "DAC"
    family = "dac"
    fixed_files = ()  # its files have no fixed names (own_file finds them)
    config_file = None  # the kwargs travel inside the weights file
    generator_key = "state_dict"
    file_suffix = ".pth"  # export OUT.pth writes that one file

    def own_file(self, path: Path) -> Path | None:
        """The release file at ``path`` (a ``.pth`` file, or a folder as ``save_to_folder`` writes
        it), or None when ``path`` is not one."""
        if path.is_file():
            return path if path.suffix == self.file_suffix else None
        for name in (FOLDER_WEIGHTS, WEIGHTS):
            if (path / name).is_file():
                return path / name
        return None

    def read_config(self, path: Path) -> dict[str, Any]:
        """The file's ``metadata.kwargs`` with DAC's defaults for any left out, read weights-only."""
        if _is_torch_package(path):
            raise ReleaseError(f"{path}: a torch.package archive (DAC.save's default), which holds Python code that "
                               "loading it would run; distgan reads weights only. Write the weights with "
                               "model.save(path, package=False), or use DAC's published weights_*.pth")
        content = load_release_file(path)
        metadata = content.get("metadata") if isinstance(content, dict) else None
        if not isinstance(content.get("state_dict") if isinstance(content, dict) else None, dict) \
                or not isinstance(metadata, dict) or not isinstance(metadata.get("kwargs"), dict):
            found = sorted(content) if isinstance(content, dict) else type(content).__name__
            raise ReleaseError(f"{path}: not a DAC release (expected {{'state_dict', 'metadata': {{'kwargs'}}}} as "
                               f"DAC.save(path, package=False) writes; it holds {found})")
        return DAC_DEFAULTS | metadata["kwargs"]

    def claims(self, config: dict[str, Any], generator: Path) -> bool:
        return False  # found by own_file, never from a config.json

    def files(self, step: int) -> tuple[str, str]:
        return FOLDER_WEIGHTS, ""

    def second_set_kind(self, config: dict[str, Any], config_path: Path) -> str:
        raise ReleaseError(f"{config_path}: a DAC release holds the codec only (no discriminator)")

    def generator_problem(self, cfg: Config) -> str | None:
        return None  # dac.DAC expresses every codec distgan's section describes

    def discriminator_problems(self, cfg: DiscriminatorConfig) -> list[str]:
        return ["a DAC release holds the codec only (dac.DAC's weights file has no discriminator)"]

    def differences(self, config: dict[str, Any], cfg: Config, second_set: str | None) -> list[str]:
        if found := family_mismatch(self.family, cfg):
            return found
        found = []
        for key, dotted in KEYS:
            value, ours = config[key], _field(cfg, dotted)
            if (list(value) if isinstance(value, (list, tuple)) else value) != ours:
                found.append(f"metadata.kwargs.{key}={value!r} but {dotted}={ours!r}")
        latent, ours = config["latent_dim"], cfg.model.generator.latent()
        if latent is not None and latent != ours:
            found.append(f"metadata.kwargs.latent_dim={latent!r} but model.generator.latent_dim resolves to {ours}")
        return found

    def model_config(self, config: dict[str, Any]) -> tuple[AudioConfig, DACConfig]:
        """The audio settings and ``model.generator`` section of a release's kwargs (``load_codec``)."""
        from distgan.config import AudioConfig
        from distgan.families.dac.config import DACConfig

        if not isinstance(config["codebook_dim"], int):
            raise ReleaseError(f"metadata.kwargs.codebook_dim={config['codebook_dim']!r}: distgan's codec looks every "
                               "codebook up in the same number of dimensions (an int)")
        section = DACConfig(**{key: config[key] for key, dotted in KEYS if dotted.startswith("model.")},
                            latent_dim=config["latent_dim"], quantizer_dropout=float(config["quantizer_dropout"]))
        return AudioConfig(sample_rate=config["sample_rate"]), section

    def kwargs(self, cfg: Config) -> dict[str, Any]:
        """``dac.DAC.__init__``'s arguments for the run's codec, as ``DAC.save`` records them."""
        g = cfg.model.generator
        return {"encoder_dim": g.encoder_dim, "encoder_rates": list(g.encoder_rates), "latent_dim": g.latent(),
                "decoder_dim": g.decoder_dim, "decoder_rates": list(g.decoder_rates), "n_codebooks": g.n_codebooks,
                "codebook_size": g.codebook_size, "codebook_dim": g.codebook_dim,
                "quantizer_dropout": g.quantizer_dropout, "sample_rate": cfg.audio.sample_rate}

    def generator_file(self, state: dict[str, Any], cfg: Config) -> dict[str, Any]:
        return {"state_dict": state, "metadata": {"kwargs": self.kwargs(cfg)}}


DAC_RELEASE = DACRelease()
