"""EMA codebooks across ranks (``distgan.train.codebook_sync``): two gloo processes, each on half of
every batch, against one process on the whole batch; and a resumed run against an uninterrupted one."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
import torch

from tests.train.helpers import two_ranks
from tests.train.scripts_cluster.codebook_ranks import LAYERS, STEPS, THRESHOLD, batches, quantizer, reference

SCRIPT = Path(__file__).parent / "scripts_cluster" / "codebook_ranks.py"


@pytest.fixture(scope="module")
def ranks(tmp_path_factory: pytest.TempPathFactory) -> list[dict]:
    """Each rank's record (started directly: torchrun's own start-up costs seconds)."""
    out = tmp_path_factory.mktemp("codebooks")
    two_ranks(SCRIPT, out, timeout=120)
    return [torch.load(out / f"rank-{rank}.pt") for rank in (0, 1)]


def restarted(state: dict[str, torch.Tensor], layer: int) -> torch.Tensor:
    """Codes restarted in the step that left ``state``: count exactly the threshold, sum = threshold x code."""
    prefix = f"layers.{layer}._codebook."
    return (state[prefix + "cluster_size"] == THRESHOLD) & (
        state[prefix + "embed_avg"] == THRESHOLD * state[prefix + "embed"]).all(dim=1)


@pytest.mark.slow
def test_codebooks_are_bit_identical_on_both_ranks_and_the_whole_batchs(ranks: list[dict]) -> None:
    whole = reference()
    for step in range(STEPS):
        for name, value in whole[step].items():
            assert torch.equal(ranks[0]["states"][step][name], ranks[1]["states"][step][name]), (step, name)
            torch.testing.assert_close(ranks[0]["states"][step][name], value, rtol=1e-5, atol=1e-6,
                                       msg=f"step {step}: {name}")
    assert int(ranks[0]["states"][-1]["layers.1._codebook.steps"]) == STEPS


@pytest.mark.slow
def test_restarts_draw_from_the_global_batch(ranks: list[dict]) -> None:
    """Layer 0 quantizes the batch itself: each restarted code is one of the whole batch's vectors,
    some from rank 1's half, which only the all-reduce brought to rank 0."""
    second_half = 0
    total = 0
    for step, state in enumerate(ranks[0]["states"]):
        mask = restarted(state, 0)
        total += int(mask.sum())
        clips = batches()[step].transpose(1, 2)  # [BATCH, FRAMES, DIM]
        for code in state["layers.0._codebook.embed"][mask]:
            hits = (clips == code).all(dim=-1).nonzero()
            assert len(hits), f"step {step}: a restarted code is no vector of the batch"
            second_half += int(hits[0, 0] >= clips.shape[0] // 2)
    assert total > 0 and second_half > 0
    assert any(restarted(state, 1).any() for state in ranks[0]["states"][1:])


@pytest.mark.slow
def test_one_all_reduce_per_layer_and_step_after_the_kmeans_start(ranks: list[dict]) -> None:
    for record in ranks:
        assert record["calls"][0] == (3 * LAYERS, LAYERS)  # counts, statistics and the shared k-means; the gather
        assert record["calls"][1:] == [(LAYERS, 0)] * (STEPS - 1)


@pytest.mark.slow
def test_unequal_vector_counts_are_refused_naming_layer_and_counts(ranks: list[dict]) -> None:
    for record in ranks:  # at the start every rank refuses
        assert "layer 0" in record["refusals"]["init"] and "[12, 14]" in record["refusals"]["init"]
    # Later, the rank whose count changed refuses; the other's step completes.
    assert ranks[0]["refusals"]["later"] == ""
    assert "layer 0" in ranks[1]["refusals"]["later"] and "[12, 14]" in ranks[1]["refusals"]["later"]


def test_a_resumed_quantizer_continues_bit_for_bit() -> None:
    whole = batches()
    uninterrupted = quantizer()
    expected = []
    for x in whole:
        uninterrupted(x)
        expected.append({k: v.clone() for k, v in uninterrupted.state_dict().items()})
    first = quantizer()
    for x in whole[:2]:
        first(x)
    saved = io.BytesIO()
    torch.save(first.state_dict(), saved)
    resumed, forgetful = quantizer(), quantizer()
    resumed.load_state_dict(torch.load(io.BytesIO(saved.getvalue())))
    without_steps = {k: v for k, v in torch.load(io.BytesIO(saved.getvalue())).items() if not k.endswith("steps")}
    forgetful.load_state_dict(without_steps)  # as an encodec state dict loads: steps from 0
    for step in range(2, STEPS):
        resumed(whole[step])
        forgetful(whole[step])
        assert restarted(expected[step], 0).any()  # the restart draws are what could differ
        for name, value in expected[step].items():
            assert torch.equal(resumed.state_dict()[name], value), (step, name)
    # The draws are keyed by the step count: restarted at step 0's draws, the codes differ.
    assert not torch.equal(forgetful.state_dict()["layers.0._codebook.embed"], expected[-1]["layers.0._codebook.embed"])
