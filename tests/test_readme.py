"""The README and docs/ stay true: every config field documented in docs/config.md, the CI commands
are the README's, and every page the README links exists."""

from __future__ import annotations

import re
import subprocess

from distgan.config import iter_fields
from tests.conftest import REPO_ROOT

README = (REPO_ROOT / "README.md").read_text()
CONFIG_REFERENCE = (REPO_ROOT / "docs" / "config.md").read_text()


def test_every_config_field_is_in_the_reference() -> None:
    documented = set(re.findall(r"^\| `([a-z_.{},]+)` \|", CONFIG_REFERENCE, re.M))
    expanded = set()
    for name in documented:
        match = re.match(r"(.*)\{(.*)\}(.*)", name)
        if match:
            expanded.update(match.group(1) + part + match.group(3) for part in match.group(2).split(","))
        else:
            expanded.add(name)
    fields = {name for name, _, _ in iter_fields()}
    assert fields - expanded == set(), "undocumented config fields"
    assert expanded - fields == set(), "documented fields that do not exist"


def test_ci_runs_the_readme_install_and_test_commands() -> None:
    install = 'python -m pip install -c .ci/constraints.txt -e ".[test]"'
    tests = "ruff check . && python -m pytest -q -n 2 --dist loadscope"
    lines = [line.split("  #")[0].strip() for line in README.splitlines()]
    assert install in lines and tests in lines
    ci = (REPO_ROOT / ".ci" / "run").read_text()
    # .ci/run takes both lines from the README and installs nothing else.
    assert "grep -m1" in ci and "README.md" in ci
    assert [line for line in ci.splitlines() if "pip install" in line and "grep" not in line] == []
    done = subprocess.run(["bash", "-c", "grep -m1 -E '^python -m pip install -c \\.ci/constraints\\.txt -e "
                           "\"\\.\\[test\\]\"' README.md | sed 's/ *#.*//'"], cwd=REPO_ROOT,
                          capture_output=True, text=True)
    assert done.stdout.strip() == install


def test_the_readme_starts_short_and_its_links_resolve() -> None:
    # The install, the demo and the tests come first; the reference lives in docs/.
    # Short: what it is, install, demo, tests, what it trains and how, the families' tables, links.
    assert README.count("\n") < 170
    assert README.index("git clone") < README.index("download.pytorch.org/whl/cpu") < README.index("-c .ci/constraints.txt -e .")
    assert README.index("distgan demo") < README.index("python -m pytest")
    for page in ("README.md", *(f"docs/{p.name}" for p in (REPO_ROOT / "docs").glob("*.md"))):
        text = (REPO_ROOT / page).read_text()
        for target in re.findall(r"\]\(([^)#:]+)(?:#[^)]*)?\)", text):
            assert (REPO_ROOT / page).parent.joinpath(target).resolve().exists(), f"{page}: broken link {target}"


def test_the_docs_state_the_demo_as_it_runs() -> None:
    assert '"demo/tensorboard"' in README and "vocoder.encode(wave)" in README
    assert "about 20 MB" not in README
