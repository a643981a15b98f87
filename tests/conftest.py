"""Shared fixtures: the repository root and the optional real corpus in ../shared."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
LJSPEECH_MINI = REPO_ROOT.parent / "shared" / "data" / "ljspeech-mini"


@pytest.fixture
def ljspeech_mini() -> Path:
    """The 24-clip LJSpeech sample; tests that need it skip where ../shared is absent."""
    if not (LJSPEECH_MINI / "metadata.csv").is_file():
        pytest.skip("../shared/data/ljspeech-mini is not present (fresh clone)")
    return LJSPEECH_MINI
