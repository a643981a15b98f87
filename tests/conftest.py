"""Shared fixtures: the repository root, the optional real corpus in ../shared, and a private
cache folder for the synthetic corpus (tests never write to the user's ~/.cache)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from distgan.threads import settle_threads

# The tests' own torch work (two xdist workers on two cores, beside the training processes they
# start) gets distgan's wait policy too; it must be set before any test module imports torch.
settle_threads()

REPO_ROOT = Path(__file__).resolve().parents[1]
# The slowest modules, slowest first (measured with --durations on 2 cores). The README's command
# hands whole modules to two xdist workers (--dist loadscope) in collection order; starting with
# the longest keeps one of them from ending the run alone with a five-minute module.
SLOWEST_FIRST = ("train/test_family_launch.py", "train/test_deepspeed.py", "train/test_fault_injection.py",
                 "slurm/test_two_nodes.py", "train/test_trust.py", "train/test_bigvgan_train.py",
                 "bench/test_memory.py", "train/test_signals.py", "bench/test_step.py", "train/test_fine_tune.py",
                 "train/test_balancer_train.py", "train/test_wavegan_ranks.py")
LJSPEECH_MINI = REPO_ROOT.parent / "shared" / "data" / "ljspeech-mini"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Modules of ``SLOWEST_FIRST`` first, in its order; the rest as collected (a stable sort, the
    same in every worker)."""
    rank = {name: i for i, name in enumerate(SLOWEST_FIRST)}
    items.sort(key=lambda item: rank.get("/".join(item.path.parts[-2:]), len(rank)))


@pytest.fixture
def ljspeech_mini() -> Path:
    """The 24-clip LJSpeech sample; tests that need it skip where ../shared is absent."""
    if not (LJSPEECH_MINI / "metadata.csv").is_file():
        pytest.skip("../shared/data/ljspeech-mini is not present (fresh clone)")
    return LJSPEECH_MINI


@pytest.fixture(scope="session", autouse=True)
def distgan_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """DISTGAN_CACHE for this session, inherited by every subprocess the tests start."""
    path = tmp_path_factory.mktemp("distgan-cache")
    previous = os.environ.get("DISTGAN_CACHE")
    os.environ["DISTGAN_CACHE"] = str(path)
    yield path
    if previous is None:
        os.environ.pop("DISTGAN_CACHE", None)
    else:
        os.environ["DISTGAN_CACHE"] = previous
