"""The ``distgan`` command: one table of subcommands, each a module of ``distgan.commands``.

A subcommand's module is imported only when it runs, so ``distgan --help`` does not import torch.
Each module offers ``add_arguments(parser)`` and ``main(args) -> int``.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys

from distgan.threads import settle_threads

# (words on the command line) -> (module, one-line help)
COMMANDS: dict[tuple[str, ...], tuple[str, str]] = {
    ("prepare",): ("distgan.commands.prepare", "turn a corpus (folder, LJSpeech, JSONL) into WebDataset shards"),
    ("index",): ("distgan.commands.index", "write index.json for WebDataset shards another tool wrote"),
    ("train",): ("distgan.commands.train", "train a GAN vocoder (one process, accelerate launch, torchrun)"),
    ("demo",): ("distgan.commands.demo", "train configs/tiny.yaml on the built-in corpus for a few minutes"),
    ("export",): ("distgan.commands.export", "a run's generator as fp32 safetensors, or in its original project's release format"),
    ("synthesize",): ("distgan.commands.synthesize", "turn wav files or mel tensors into audio"),
    ("encode",): ("distgan.commands.encode", "turn audio files into codes with a codec (a run, export or DAC release)"),
    ("decode",): ("distgan.commands.decode", "turn codes files back into audio"),
    ("sample",): ("distgan.commands.sample", "write clips from noise with a wavegan run's generator"),
    ("evaluate",): ("distgan.commands.evaluate", "score copy-synthesis against real audio"),
    ("bench", "data"): ("distgan.commands.bench_data", "streaming pipeline vs. a file-list loader"),
    ("bench", "step"): ("distgan.commands.bench_step", "distgan's training step vs. a plain loop or the original code's"),
    ("bench", "checkpoint"): ("distgan.commands.bench_checkpoint", "what verifying a checkpoint adds to save and load"),
    ("bench", "memory"): ("distgan.commands.bench_memory", "per-rank state under DDP and ZeRO; activation checkpointing"),
    ("bench", "gpu"): ("distgan.commands.bench_gpu", "one GPU: HiFi-GAN V1 and BigVGAN-v2 vs. the original step"),
    ("bench", "precision"): ("distgan.commands.bench_precision", "bf16/fp16 losses against the seed-to-seed noise of fp32"),
}


def _usage(group: tuple[str, ...] = ()) -> str:
    """The commands that start with ``group`` (all of them for none), one line each."""
    head = " ".join(("distgan", *group))
    lines = [f"usage: {head} {'SUBCOMMAND' if group else 'COMMAND'} [options]", "",
             "subcommands:" if group else "commands:"]
    listed = {" ".join(words): help_text for words, (_, help_text) in COMMANDS.items() if words[: len(group)] == group}
    width = max(map(len, listed))
    lines += [f"  {name:<{width}}  {help_text}" for name, help_text in listed.items()]
    lines += ["", f"Run '{head} {'SUBCOMMAND' if group else 'COMMAND'} --help' for its options."]
    if not group:
        lines.append("'distgan --version' prints the version.")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    settle_threads()  # before any command imports torch (distgan/threads.py says why)
    status = _dispatch(list(sys.argv[1:] if argv is None else argv))
    _exit_now_if_distributed(status)
    return status


def _exit_now_if_distributed(status: int) -> None:
    """End a process-group member without interpreter finalization.

    gloo's worker threads may free the last collective's tensors while Python finalizes; that
    needs the GIL, the thread is unwound, and the process aborts ("terminate called without an
    active exception", status 134) instead of returning ``status``, so a finished or requeued
    run would read as a crash. Everything distgan writes is closed by now; skip finalization.
    """
    dist = sys.modules.get("torch.distributed")
    if dist is not None and dist.is_available() and dist.is_initialized():
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(status)


def _parse(words: tuple[str, ...], argv: list[str]) -> argparse.Namespace:
    module_name, help_text = COMMANDS[words]
    parser = argparse.ArgumentParser(prog="distgan " + " ".join(words), description=help_text)
    importlib.import_module(module_name).add_arguments(parser)
    # Options and KEY=VALUE overrides in any order, as people type them.
    return parser.parse_intermixed_args(argv)


def _dispatch(argv: list[str]) -> int:
    for words, (module_name, _) in COMMANDS.items():
        if argv[: len(words)] == list(words):
            args = _parse(words, argv[len(words):])
            return int(importlib.import_module(module_name).main(args) or 0)
    if argv[:1] == ["--version"]:
        from distgan import __version__

        print(f"distgan {__version__}")
        return 0
    # A group's first word alone ("distgan bench", "distgan bench --help") lists the group.
    group = next((words[:1] for words in COMMANDS if len(words) > 1 and argv[:1] == list(words[:1])), ())
    rest = argv[len(group):]
    if rest and rest[0] not in ("-h", "--help"):
        print(f"distgan: unknown command {' '.join(argv[: len(group) + 1])!r}\n", file=sys.stderr)
        print(_usage(group), file=sys.stderr)
        return 2
    print(_usage(group))
    return 0


if __name__ == "__main__":
    sys.exit(main())
