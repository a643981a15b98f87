"""The command line as a newcomer meets it: every option explained, help at once, any order."""

from __future__ import annotations

import argparse
import importlib
import resource
import subprocess
import sys

import pytest

from distgan.cli import COMMANDS
from tests.train.helpers import REPO_ROOT, subprocess_env


def parser_for(words: tuple[str, ...]) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="distgan " + " ".join(words))
    importlib.import_module(COMMANDS[words][0]).add_arguments(parser)
    return parser


@pytest.mark.parametrize("words", list(COMMANDS), ids=" ".join)
def test_every_option_has_help(words: tuple[str, ...]) -> None:
    undocumented = [action.dest for action in parser_for(words)._actions
                    if not isinstance(action, argparse._HelpAction) and not (action.help or "").strip()]
    assert undocumented == [], f"distgan {' '.join(words)}: no help for {undocumented}"


@pytest.mark.parametrize("words", list(COMMANDS), ids=" ".join)
def test_help_answers_within_a_second(words: tuple[str, ...]) -> None:
    # Not a benchmark: a command that imports torch before parsing takes 2-12 s here. The child's CPU
    # time is what is bounded (wall time also counts other work on a busy runner), and -X importtime
    # lists every module it imported: torch must not be among them.
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    done = subprocess.run([sys.executable, "-X", "importtime", "-m", "distgan", *words, "--help"], cwd=REPO_ROOT,
                          env=subprocess_env(), capture_output=True, text=True, timeout=60)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    assert done.returncode == 0 and "usage: distgan" in done.stdout, done.stderr
    assert cpu < 1.0, f"distgan {' '.join(words)} --help took {cpu:.2f} s of CPU"
    imported = {line.rsplit("|", 1)[-1].strip() for line in done.stderr.splitlines() if line.startswith("import time:")}
    assert "distgan.cli" in imported and "torch" not in imported, sorted(imported)


def test_overrides_and_options_in_any_order() -> None:
    from distgan.cli import _parse

    args = _parse(("train",), ["--config", "C.yaml", "train.max_steps=2", "--run-dir", "R", "data.batch_size=3"])
    assert (str(args.config), str(args.run_dir), args.overrides) == ("C.yaml", "R", ["train.max_steps=2",
                                                                                     "data.batch_size=3"])


def test_export_suffix_matches_the_export_format() -> None:
    from distgan.checkpoint.weights import EXPORT_SUFFIX
    from distgan.commands import export

    assert export.EXPORT_SUFFIX == EXPORT_SUFFIX


def _distgan(*words: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "distgan", *words], cwd=REPO_ROOT, env=subprocess_env(),
                          capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize("words", [("bench",), ("bench", "--help"), ("bench", "-h")], ids=" ".join)
def test_a_command_group_lists_its_subcommands(words: tuple[str, ...]) -> None:
    done = _distgan(*words)
    assert done.returncode == 0, done.stderr
    assert "unknown command" not in done.stdout + done.stderr
    listed = [line.split()[1] for line in done.stdout.splitlines() if line.startswith("  bench ")]
    assert listed == [w[1] for w in COMMANDS if w[0] == "bench"]
    assert "train" not in done.stdout.split()  # only the group's own subcommands


def test_an_unknown_subcommand_names_itself_and_lists_the_group() -> None:
    done = _distgan("bench", "stpe")
    assert done.returncode == 2
    assert "unknown command 'bench stpe'" in done.stderr and "  bench step " in done.stderr


def test_version_prints_the_package_version() -> None:
    from distgan import __version__

    done = _distgan("--version")
    assert (done.returncode, done.stdout.strip()) == (0, f"distgan {__version__}")
    assert "--version" in _distgan("--help").stdout


def test_demo_help_shows_the_minutes_default() -> None:
    from distgan.commands import demo

    help_text = " ".join(parser_for(("demo",)).format_help().split())
    default = parser_for(("demo",)).get_default("minutes")
    assert f"(default: {default})" in help_text.rsplit("--minutes MINUTES", 1)[1].split("--data")[0]
    assert default == 3.0 and demo.VALIDATIONS_PER_BUDGET > 3
