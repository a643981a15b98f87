"""The README stays true: every config field documented, the CI command is the README's."""

from __future__ import annotations

import re

from distgan.config import iter_fields
from tests.conftest import REPO_ROOT

README = (REPO_ROOT / "README.md").read_text()


def test_every_config_field_is_in_the_reference() -> None:
    documented = set(re.findall(r"^\| `([a-z_.{},]+)` \|", README, re.M))
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


def test_ci_runs_the_readme_test_command() -> None:
    command = 'pip install -e ".[test]" && ruff check . && python -m pytest -q'
    assert command in README
    ci = (REPO_ROOT / ".ci" / "run").read_text()
    assert "ruff check . && python -m pytest -q" in ci and '-e ".[test]"' in ci
