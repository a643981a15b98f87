"""distgan's EMA residual VQ against encodec 0.1.1's ``core_vq`` from the same buffers: codes, quantized
latents, commitment loss and the buffers a training step leaves, in eval and training mode."""

from __future__ import annotations

import pytest
import torch

from distgan.models.ema_quantize import EMAResidualVQ

core_vq = pytest.importorskip("encodec.quantization.core_vq")

DIM, SIZE, LAYERS = 8, 16, 3
TOL = {"rtol": 1e-5, "atol": 1e-5}


def encodec_rvq(threshold: int = 2, size: int = SIZE) -> torch.nn.Module:
    return core_vq.ResidualVectorQuantization(num_quantizers=LAYERS, dim=DIM, codebook_size=size, kmeans_init=True,
                                              kmeans_iters=4, threshold_ema_dead_code=threshold)


def trained_state(min_count: float, seed: int = 1) -> dict[str, torch.Tensor]:
    """An initialised state; every EMA count at least ``min_count`` (>= 2: no code expires for a few steps)."""
    generator = torch.Generator().manual_seed(seed)
    state = encodec_rvq().state_dict()
    for i in range(LAYERS):
        prefix = f"layers.{i}._codebook."
        embed = torch.randn(SIZE, DIM, generator=generator) / (i + 1)
        counts = min_count + 20 * torch.rand(SIZE, generator=generator)
        state.update({prefix + "inited": torch.tensor([1.0]), prefix + "embed": embed,
                      prefix + "cluster_size": counts, prefix + "embed_avg": embed * counts[:, None]})
    return state


def pair(state: dict[str, torch.Tensor], threshold: int = 2) -> tuple[torch.nn.Module, EMAResidualVQ]:
    theirs, ours = encodec_rvq(threshold), EMAResidualVQ(DIM, LAYERS, SIZE, kmeans_iters=4,
                                                          threshold_ema_dead_code=threshold)
    theirs.load_state_dict(state)
    assert ours.load_state_dict(state, strict=True).missing_keys == []  # ``steps`` defaults to 0
    return theirs, ours


def latents(seed: int = 2) -> torch.Tensor:
    return torch.randn(4, DIM, 10, generator=torch.Generator().manual_seed(seed))


def assert_same_step(theirs: torch.nn.Module, ours: EMAResidualVQ, x: torch.Tensor, n_q: int | None = None) -> None:
    q_theirs, codes_theirs, losses = theirs(x.clone().requires_grad_(), n_q=n_q)
    x_ours = x.clone().requires_grad_()
    q_ours, codes_ours, loss = ours(x_ours, n_q=n_q)
    assert torch.equal(codes_theirs.transpose(0, 1), codes_ours)  # encodec: [n_q, B, T]
    torch.testing.assert_close(q_ours, q_theirs, **TOL)
    torch.testing.assert_close(loss, losses.mean(), **TOL)  # EnCodec's penalty: the mean over layers
    ours_state = ours.state_dict()
    for name, value in theirs.state_dict().items():
        torch.testing.assert_close(ours_state[name], value, **TOL, msg=name)
    if ours.training:  # the gradient reaches the input straight through, plus the commitment term
        loss.backward()
        assert x_ours.grad is not None and x_ours.grad.abs().sum() > 0


def test_eval_forward_and_encode_decode_match_encodec() -> None:
    theirs, ours = pair(trained_state(2.0))
    theirs.eval(), ours.eval()
    x = latents()
    before = {k: v.clone() for k, v in ours.state_dict().items()}
    assert_same_step(theirs, ours, x)
    assert all(torch.equal(before[k], v) for k, v in ours.state_dict().items())  # eval updates nothing
    codes = theirs.encode(x)
    assert torch.equal(ours.encode(x), codes.transpose(0, 1))
    torch.testing.assert_close(ours.decode(codes.transpose(0, 1)), theirs.decode(codes), **TOL)
    assert torch.equal(ours.encode(x, n_q=2), codes[:2].transpose(0, 1))


def test_training_steps_update_the_same_buffers_as_encodec() -> None:
    theirs, ours = pair(trained_state(8.0))
    theirs.train(), ours.train()
    for step in range(4):  # the EMA counts stay above the threshold: no code expires
        assert_same_step(theirs, ours, latents(10 + step))
    assert int(ours.state_dict()["layers.0._codebook.steps"]) == 4


def test_a_step_at_fewer_codebooks_updates_only_those_layers() -> None:
    theirs, ours = pair(trained_state(8.0))
    theirs.train(), ours.train()
    last = {k: v.clone() for k, v in ours.state_dict().items() if k.startswith("layers.2.")}
    assert_same_step(theirs, ours, latents(), n_q=2)
    assert all(torch.equal(ours.state_dict()[k], v) for k, v in last.items())


def test_kmeans_init_with_one_code_matches_encodec() -> None:
    """With one code k-means does not depend on its random start (the mean of every vector)."""
    theirs = core_vq.ResidualVectorQuantization(num_quantizers=LAYERS, dim=DIM, codebook_size=1, kmeans_init=True,
                                                kmeans_iters=3)
    ours = EMAResidualVQ(DIM, LAYERS, 1, kmeans_iters=3)
    assert all(torch.equal(ours.state_dict()[k], v) for k, v in theirs.state_dict().items())  # fresh: zeros
    theirs.train(), ours.train()
    assert_same_step(theirs, ours, latents())
    assert float(ours.state_dict()["layers.0._codebook.inited"][0]) == 1.0


def test_encodec_restart_leaves_no_trace_and_distgan_restart_does() -> None:
    """encodec 0.1.1's dead-code restart writes ``embed``, which the EMA update then overwrites:
    with codes expired, threshold 2 and threshold 0 leave the same state. distgan's takes effect."""
    state = trained_state(0.0, seed=3)
    expired = state["layers.0._codebook.cluster_size"] < 2
    assert expired.any()
    restarting, plain = encodec_rvq(2), encodec_rvq(0)
    for model in (restarting, plain):
        model.load_state_dict(state)
        model.train()
    x = latents()
    for a, b in zip(restarting(x), plain(x), strict=True):
        assert torch.equal(a, b)
    assert all(torch.equal(restarting.state_dict()[k], v) for k, v in plain.state_dict().items())

    _, ours = pair(state)
    ours.train()
    ours(x)
    embed = ours.state_dict()["layers.0._codebook.embed"]
    plain_embed = plain.state_dict()["layers.0._codebook.embed"]
    torch.testing.assert_close(embed[~expired], plain_embed[~expired], **TOL)  # the others: encodec's update
    vectors = x.transpose(1, 2).reshape(-1, DIM)
    for row in embed[expired]:  # each restarted code is one of the batch's vectors
        assert (vectors == row).all(dim=1).any()
    assert torch.equal(ours.state_dict()["layers.0._codebook.cluster_size"][expired], torch.full((int(expired.sum()),), 2.0))
