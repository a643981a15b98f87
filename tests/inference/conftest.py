"""``tiny_run``: a run directory of configs/tiny.yaml trained briefly, made once per session."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.inference.helpers import trained_tiny_run


@pytest.fixture(scope="session")
def tiny_run(distgan_cache: Path) -> Path:
    return trained_tiny_run(distgan_cache)
