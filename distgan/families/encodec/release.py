"""EnCodec's release format: the bare state dict Meta publishes (``encodec_24khz-d7cc33bc.th``,
saved with ``torch.save``; ``EncodecModel._get_pretrained`` reads it with torch.hub).

- The file is ``EncodecModel.state_dict()`` itself (weight norm as ``weight_g``/``weight_v``,
  keys as distgan's codec modules), with no hyperparameters. What shapes tell is derived
  (``layout``: the codebook count, size and dimension from the ``embed`` tensors, ``n_filters``,
  ``kernel_size`` and the channel count from the first convolution, the ratios from the
  downsamplers' kernels (2 x ratio), the residual blocks and kernels, the LSTM's layers; what
  shapes cannot tell, e.g. ``causal`` or ``pad_mode``, is the run's) and compared
  with the run's config; ``load_codec`` without a config takes the 24 kHz model's published layout
  (``EncodecConfig``'s defaults at 24 kHz) once the derived fields agree with it.
- The 48 kHz model is stereo and normalises segments, which distgan's codec does not offer: a
  first convolution reading two channels is refused.
- distgan's EMA codebooks add a ``steps`` buffer: absent from the file, it loads as 0
  (``distgan.models.ema_quantize``), and the export drops it, so that
  ``EncodecModel(...).load_state_dict(torch.load(OUT.th))`` is strict.

Read weights-only (a pickle that needs code is refused with the file's name). Torch-free until a
file is read.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

from distgan.checkpoint.release_config import ReleaseError, family_mismatch, load_release_file

if TYPE_CHECKING:
    from distgan.config import AudioConfig, Config, DiscriminatorConfig
    from distgan.families.encodec.config import EncodecConfig

FIRST_CONV = "encoder.model.0.conv.conv."
EMBED = re.compile(r"^quantizer\.vq\.layers\.(\d+)\._codebook\.embed$")
CONV = re.compile(r"^encoder\.model\.(\d+)\.conv\.conv\.weight(_v)?$")  # the stem, downsamplers and last conv
BLOCK = re.compile(r"^encoder\.model\.(\d+)\.block\.1\.conv\.conv\.weight(_v)?$")  # a residual block's first conv
LSTM = re.compile(r"^encoder\.model\.\d+\.lstm\.weight_ih_l(\d+)$")
STEPS = re.compile(r"^quantizer\.vq\.layers\.\d+\._codebook\.steps$")
SAMPLE_RATE_24KHZ = 24000


def _shape(state: dict[str, Any], key: str) -> tuple[int, ...] | None:
    value = state.get(key)
    return tuple(value.shape) if hasattr(value, "shape") else None


def _ordered(state: dict[str, Any], pattern: re.Pattern[str]) -> list[tuple[int, ...]]:
    """The shapes of the keys ``pattern`` matches, in the order of the module index it captures."""
    found = [(int(m.group(1)), key) for key in state if (m := pattern.match(key))]
    return [_shape(state, key) or () for _, key in sorted(found)]


def layout(state: dict[str, Any], path: Path) -> dict[str, Any]:
    """What an ``EncodecModel`` state dict's shapes tell of the arguments it was built with."""
    conv = _shape(state, FIRST_CONV + "weight_v") or _shape(state, FIRST_CONV + "weight")
    embeds = {int(m.group(1)): _shape(state, key) for key in state if (m := EMBED.match(key))}
    if conv is None or len(conv) != 3 or not embeds or sorted(embeds) != list(range(len(embeds))):
        raise ReleaseError(f"{path}: not an EncodecModel state dict (no {FIRST_CONV}weight[_v] or no "
                           f"quantizer.vq.layers.N._codebook.embed; it holds {len(state)} entries, e.g. "
                           f"{sorted(state)[:3]})")
    sizes = {shape for shape in embeds.values()}
    if len(sizes) != 1 or len(next(iter(sizes))) != 2:
        raise ReleaseError(f"{path}: codebooks of different shapes {sorted(sizes)}")
    size, dimension = next(iter(sizes))
    lstm = {int(m.group(1)) for key in state if (m := LSTM.match(key))}
    convs, blocks = _ordered(state, CONV), _ordered(state, BLOCK)
    downsamplers = convs[1:-1]  # kernel 2 x ratio each, in the encoder's order (the config's reversed)
    return {"ratios": [shape[2] // 2 for shape in reversed(downsamplers)],
            "n_residual_layers": len(blocks) // max(len(downsamplers), 1),
            "residual_kernel_size": blocks[0][2] if blocks else None, "last_kernel_size": convs[-1][2],
            "channels": conv[1], "n_filters": conv[0], "kernel_size": conv[2], "n_q": len(embeds),
            "codebook_size": size, "dimension": dimension, "lstm": len(lstm),
            "norm": "weight_norm" if FIRST_CONV + "weight_g" in state else "other"}


def expected(section: EncodecConfig, sample_rate: int) -> dict[str, Any]:
    """The layout a run's codec has (``layout``'s fields)."""
    return {"ratios": list(section.ratios), "n_residual_layers": section.n_residual_layers,
            "residual_kernel_size": section.residual_kernel_size, "last_kernel_size": section.last_kernel_size,
            "channels": 1, "n_filters": section.n_filters, "kernel_size": section.kernel_size,
            "n_q": max(section.bandwidth_codebooks(sample_rate)), "codebook_size": section.codebook_size,
            "dimension": section.dimension, "lstm": section.lstm,
            "norm": "weight_norm" if section.norm == "weight_norm" else "other"}


FIELDS = {"ratios": "model.generator.ratios", "n_residual_layers": "model.generator.n_residual_layers",
          "residual_kernel_size": "model.generator.residual_kernel_size",
          "last_kernel_size": "model.generator.last_kernel_size", "channels": "(distgan's codec is mono)", "n_filters": "model.generator.n_filters",
          "kernel_size": "model.generator.kernel_size",
          "n_q": "the codebooks of max(model.generator.target_bandwidths)",
          "codebook_size": "model.generator.codebook_size", "dimension": "model.generator.dimension",
          "lstm": "model.generator.lstm", "norm": "model.generator.norm"}


class EncodecRelease:
    name = "encodec"
    label = "EnCodec"
    family = "encodec"
    fixed_files = ()  # its files have no fixed names (own_file finds them)
    config_file = None  # no hyperparameters travel: read_config derives them from shapes
    generator_key = None  # the file is the state dict
    file_suffix = ".th"

    def own_file(self, path: Path) -> Path | None:
        return path if path.is_file() and path.suffix == self.file_suffix else None

    def read_config(self, path: Path) -> dict[str, Any]:
        """The layout the file's shapes tell (``layout``), read weights-only."""
        content = load_release_file(path)
        if not isinstance(content, dict):
            raise ReleaseError(f"{path}: not an EncodecModel state dict (it holds a {type(content).__name__})")
        found = layout(content, path)
        if found["channels"] != 1:
            raise ReleaseError(f"{path}: an EnCodec model of {found['channels']} channels (the 48 kHz stereo model, "
                               "which normalises segments); distgan's EnCodec codec is mono, as the 24 kHz model is")
        return found

    def claims(self, config: dict[str, Any], generator: Path) -> bool:
        return False  # found by own_file

    def files(self, step: int) -> tuple[str, str]:
        return "encodec.th", ""

    def second_set_kind(self, config: dict[str, Any], config_path: Path) -> str:
        raise ReleaseError(f"{config_path}: an EnCodec release holds the codec only (no discriminator)")

    def generator_problem(self, cfg: Config) -> str | None:
        g = cfg.model.generator
        if getattr(g, "quantizer", "ema") != "ema":
            return (f"model.generator.quantizer={g.quantizer!r}: encodec's EncodecModel has EMA codebooks only "
                    "(quantizer: ema)")
        return None

    def discriminator_problems(self, cfg: DiscriminatorConfig) -> list[str]:
        return ["an EnCodec release holds the codec only (Meta's .th file has no discriminator)"]

    def differences(self, config: dict[str, Any], cfg: Config, second_set: str | None) -> list[str]:
        if found := family_mismatch(self.family, cfg):
            return found
        ours = expected(cfg.model.generator, cfg.audio.sample_rate)
        return [f"the file's {key}={config[key]!r} but {FIELDS[key]}={ours[key]!r}"
                for key in FIELDS if config[key] != ours[key]]

    def model_config(self, config: dict[str, Any]) -> tuple[AudioConfig, EncodecConfig]:
        """The 24 kHz model's published layout (``encodec_model_24khz``), when the file has it."""
        from distgan.config import AudioConfig
        from distgan.families.encodec.config import EncodecConfig

        section = EncodecConfig()
        ours = expected(section, SAMPLE_RATE_24KHZ)
        wrong = [f"{key}={config[key]!r} (24 kHz model: {ours[key]!r})" for key in FIELDS if config[key] != ours[key]]
        if wrong:
            raise ReleaseError("the file is not the 24 kHz EnCodec layout (" + ", ".join(wrong) + "); without a "
                               "config distgan knows that layout only: load it with a run's config (train.init_from)")
        return AudioConfig(sample_rate=SAMPLE_RATE_24KHZ), section

    def generator_file(self, state: dict[str, Any], cfg: Config) -> dict[str, Any]:
        """``EncodecModel.state_dict()``'s keys: distgan's ``steps`` buffers dropped."""
        return {key: value for key, value in state.items() if not STEPS.match(key)}


ENCODEC_RELEASE = EncodecRelease()
