"""``distgan export RUN_DIR OUT.safetensors``: a plain fp32 generator for inference.

The weights are consolidated from ZeRO shards when the run used DeepSpeed, weight norm is folded
into plain convolution weights, and the model and audio config travel inside the file's metadata
and in ``OUT.yaml`` beside it. Loading needs only torch, safetensors and distgan's model code.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path

import yaml


def export_generator(source: str | Path, out: str | Path) -> Path:
    from safetensors.torch import save_file

    from distgan.inference.load import CONFIG_METADATA_KEY, load_checkpoint_generator

    generator, cfg, step = load_checkpoint_generator(source)
    generator.remove_weight_norm()
    model_cfg = {"audio": dataclasses.asdict(cfg.audio), "generator": dataclasses.asdict(cfg.model.generator)}
    tensors = {key: value.detach().float().contiguous() for key, value in generator.state_dict().items()}
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    save_file(tensors, str(out), metadata={CONFIG_METADATA_KEY: json.dumps(model_cfg), "step": str(step)})
    out.with_suffix(".yaml").write_text(yaml.safe_dump({**model_cfg, "step": step}, sort_keys=False))
    return out


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("source", type=Path, help="run directory (newest complete checkpoint) or checkpoint folder")
    parser.add_argument("out", type=Path, help="output .safetensors file")


def main(args: argparse.Namespace) -> int:
    if args.out.suffix != ".safetensors":
        print(f"distgan export: output must end in .safetensors, got {args.out}")
        return 2
    path = export_generator(args.source, args.out)
    print(f"wrote {path} ({path.stat().st_size / 2**20:.1f} MiB) and {path.with_suffix('.yaml')}")
    return 0
