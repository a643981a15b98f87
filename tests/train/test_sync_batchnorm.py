"""BatchNorm across ranks (``dist.batchnorm``): two gloo processes, each on half a batch, against one
process on the whole batch."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from tests.train.helpers import two_ranks
from tests.train.scripts_cluster.batchnorm_ranks import reference

STATS = ("running_mean", "running_var")
SCRIPT = Path(__file__).parent / "scripts_cluster" / "batchnorm_ranks.py"


@pytest.fixture(scope="module")
def ranks(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Both modes' state dicts from two processes (started directly: torchrun's own start-up costs seconds)."""
    out = tmp_path_factory.mktemp("batchnorm")
    two_ranks(SCRIPT, out, timeout=180)
    return out


def load(out: Path, mode: str) -> list[dict[str, torch.Tensor]]:
    return [torch.load(out / f"{mode}-rank-{rank}.pt") for rank in (0, 1)]


@pytest.mark.slow
def test_sync_statistics_are_the_whole_batch_and_identical_on_every_rank(ranks: Path) -> None:
    ranks = load(ranks, "sync")
    whole = reference()
    running = [name for name in whole if name.endswith(STATS)]
    assert len(running) == 2 * 3  # the input norm and two stages
    for name, value in whole.items():
        assert torch.equal(ranks[0][name], ranks[1][name]), name
        # Three SGD steps through normalisation by the whole batch's statistics: forward and backward.
        torch.testing.assert_close(ranks[0][name].float(), value.float(), rtol=1e-5, atol=1e-6, msg=name)
    assert int(ranks[0]["input_norm.num_batches_tracked"]) == 3


@pytest.mark.slow
def test_local_statistics_are_averaged_over_ranks_and_differ_from_the_whole_batch(ranks: Path) -> None:
    ranks = load(ranks, "local")
    whole = reference()
    for name in whole:
        if name.endswith(STATS):
            assert torch.equal(ranks[0][name], ranks[1][name]), name
    # Normalising by half a batch trains other weights: per-rank statistics are not the whole batch's.
    assert not torch.allclose(ranks[0]["stages.0.0.weight"], whole["stages.0.0.weight"], rtol=1e-4, atol=1e-6)
