"""A run's generator as one plain fp32 ``.safetensors`` file for inference (``distgan export``).

The weights are consolidated from ZeRO shards when the run used DeepSpeed, weight norm is folded
into plain convolution weights, and the model and audio config travel inside the file's metadata
(``distgan.checkpoint.weights``) and in ``OUT.yaml`` beside it. Loading needs only torch,
safetensors and distgan's model code.
"""

from __future__ import annotations

from pathlib import Path

import yaml

from distgan.checkpoint.weights import write_export
from distgan.inference.load import load_checkpoint_generator


def export_generator(source: str | Path, out: str | Path, ema: bool = False) -> Path:
    """``source``'s generator as ``out`` (and ``out.yaml``): a mel vocoder (``load_generator``) or a
    codec (``load_codec``) reads it back. ``ema``: the run's average of the weights (``train.ema_decay``),
    which ``out.yaml`` then says (``weights: ema``)."""
    generator, cfg, step = load_checkpoint_generator(source, offers=("synthesize", "decode"), ema=ema)
    generator.remove_weight_norm()
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    model_cfg = write_export(out, generator.state_dict(), cfg.audio, cfg.model.generator, step)
    said = {**model_cfg, "step": step, **({"weights": "ema"} if ema else {})}
    out.with_suffix(".yaml").write_text(yaml.safe_dump(said, sort_keys=False))
    return out
