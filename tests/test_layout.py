"""The package keeps the shape docs/layout.md describes: dependencies point one way,
commands are apart from components, and files and functions stay small enough to read."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

from distgan.cli import COMMANDS
from tests.conftest import REPO_ROOT

PACKAGE = REPO_ROOT / "distgan"
MAX_FILE_LINES = 400
MAX_FUNCTION_LINES = 60


def sources(folder: Path = PACKAGE) -> list[Path]:
    return sorted(folder.rglob("*.py"))


def imported_modules(path: Path) -> set[str]:
    """Every module ``path`` imports, at any depth of the file (lazy imports too)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    return found


def outside(modules: set[str], allowed: tuple[str, ...]) -> set[str]:
    return {m for m in modules if not any(m == a or m.startswith(a + ".") for a in allowed)}


def test_inference_and_evaluation_import_no_training_code() -> None:
    code = ("import sys\n"
            "import distgan.inference.load, distgan.inference.export, distgan.inference.synthesize\n"
            "import distgan.evaluation.evaluate, distgan.evaluation.metrics, distgan.checkpoint.weights\n"
            "print(sorted(m for m in sys.modules if m.startswith(('distgan.train', 'accelerate', 'deepspeed'))))\n")
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


# BigVGAN v2's CQT discriminator resamples with torchaudio and takes nnAudio's CQT, as NVIDIA's does.
# multiband.py: torchaudio's Spectrogram, whose window Vocos's state dicts hold (spec_fn.window).
MODEL_EXTRA_IMPORTS = {"cqt.py": ("torchaudio", "nnAudio"), "multiband.py": ("torchaudio",)}


@pytest.mark.parametrize("path", sources(PACKAGE / "models"), ids=lambda p: p.relative_to(PACKAGE / "models").as_posix())
def test_models_import_only_torch_the_config_and_models(path: Path) -> None:
    distgan_or_third_party = {m for m in imported_modules(path) if m.split(".")[0] not in sys.stdlib_module_names}
    extra = MODEL_EXTRA_IMPORTS.get(path.relative_to(PACKAGE / "models").as_posix(), ())
    assert outside(distgan_or_third_party, ("torch", "distgan.config", "distgan.models", *extra)) == set()


@pytest.mark.parametrize(("folder", "forbidden"), [
    ("data", ("distgan.models", "distgan.train", "distgan.losses", "distgan.mel", "distgan.inference")),
    ("checkpoint", ("distgan.train", "distgan.models", "accelerate")),
    ("models", ("distgan.train", "distgan.data", "accelerate", "deepspeed")),
])
def test_lower_layers_do_not_import_higher_ones(folder: str, forbidden: tuple[str, ...]) -> None:
    for path in sources(PACKAGE / folder):
        modules = imported_modules(path)
        assert outside(modules, forbidden) == modules, f"{path.relative_to(REPO_ROOT)} imports {forbidden}"


def test_only_the_engines_import_accelerate_and_deepspeed_for_training() -> None:
    users = {path.relative_to(PACKAGE).as_posix() for path in sources()
             if outside(imported_modules(path), ("accelerate", "deepspeed")) != imported_modules(path)}
    # checkpoint/: lazily, DeepSpeed's zero_to_fp32 (weights.py) and the record classes its
    # checkpoint files hold (files.py, to load them weights-only).
    assert users == {"train/engine.py", "train/ddp_engine.py", "train/deepspeed_engine.py", "checkpoint/weights.py",
                     "checkpoint/files.py"}


def test_every_command_is_a_module_of_distgan_commands() -> None:
    for words, (module, _) in COMMANDS.items():
        assert module.startswith("distgan.commands."), words
    parsers = [path for path in sources() if "add_argument(" in path.read_text()]
    assert {path.parent.name for path in parsers} == {"commands"}


def test_files_and_functions_stay_small() -> None:
    too_long = []
    for path in sources():
        text = path.read_text()
        if text.count("\n") > MAX_FILE_LINES:
            too_long.append(f"{path.relative_to(REPO_ROOT)}: {text.count(chr(10))} lines")
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                length = node.end_lineno - node.lineno + 1
                if length > MAX_FUNCTION_LINES:
                    too_long.append(f"{path.relative_to(REPO_ROOT)}:{node.lineno} {node.name}: {length} lines")
    assert too_long == []


def _family_name_branches(path: Path, names: set[str]) -> list[str]:
    """Where ``path`` compares a value with a family's name (``==``, ``in``, ``match``) or looks
    one up in a dict literal keyed by family names: a branch on the name, not a question to the spec."""
    def named(node: ast.AST) -> bool:
        if isinstance(node, ast.Constant):
            return node.value in names
        if isinstance(node, ast.Tuple | ast.List | ast.Set):
            return any(named(element) for element in node.elts)
        return False

    where = path.relative_to(REPO_ROOT) if path.is_relative_to(REPO_ROOT) else path
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if (isinstance(node, ast.Compare) and any(named(side) for side in [node.left, *node.comparators])
                or isinstance(node, ast.MatchValue) and named(node.value)
                or isinstance(node, ast.Subscript) and isinstance(node.value, ast.Dict)
                and any(key is not None and named(key) for key in node.value.keys)):
            found.append(f"{where}:{node.lineno}")
    return found


def test_no_code_outside_the_family_folders_branches_on_a_family_name() -> None:
    from distgan.families import family_names

    names = set(family_names())
    assert {"hifigan", "bigvgan", "wavegan"} <= names
    outside_families = [path for path in sources() if PACKAGE / "families" not in path.parents]
    assert [where for path in outside_families for where in _family_name_branches(path, names)] == []


def test_the_family_name_rule_sees_a_branch(tmp_path: Path) -> None:
    probe = tmp_path / "probe.py"
    probe.write_text('def f(cfg):\n    if cfg.family == "bigvgan":\n        return 1\n'
                     '    return {"hifigan": 2}["x"] if "wavegan" in ("a",) else 3\n')
    assert _family_name_branches(probe, {"hifigan", "bigvgan", "wavegan"}) == [f"{probe}:2", f"{probe}:4", f"{probe}:4"]
