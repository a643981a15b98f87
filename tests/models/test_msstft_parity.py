"""distgan's multi-scale STFT discriminator against EnCodec's (``encodec.msstftd``): the same
parameters under mapped keys, the same logits and feature maps for the same weights, and the set
combined with another family's discriminators (HiFi-GAN's MPD) in one run."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import torch

from distgan.config import load_config
from distgan.families import build_models
from distgan.models.msstft import ENCODEC_HOP_LENGTHS, ENCODEC_N_FFTS, MultiScaleSTFTDiscriminator
from distgan.models.reference_weights import load_reference_state_dict, reference_state_dict
from tests.conftest import REPO_ROOT
from tests.models.helpers import assert_same_outputs, n_params, single_thread

msstftd = pytest.importorskip("encodec.msstftd", reason="the encodec reference package is not installed")


@pytest.fixture(scope="module", autouse=True)
def one_thread() -> Iterator[None]:
    with single_thread():
        yield


@pytest.fixture(scope="module")
def pair() -> tuple[torch.nn.Module, MultiScaleSTFTDiscriminator]:
    """EnCodec's discriminator (its paper's five scales) with weights moved off their init, and ours loaded from it."""
    torch.manual_seed(0)
    reference = msstftd.MultiScaleSTFTDiscriminator(filters=32, n_ffts=list(ENCODEC_N_FFTS),
                                                    hop_lengths=list(ENCODEC_HOP_LENGTHS),
                                                    win_lengths=list(ENCODEC_N_FFTS))
    with torch.no_grad():
        for param in reference.parameters():
            param.add_(0.05 * torch.randn_like(param))  # biases start at zero; g starts as |v|
    ours = MultiScaleSTFTDiscriminator()
    load_reference_state_dict(ours, reference.state_dict())
    return reference.eval(), ours.eval()


def test_parameter_counts_match(pair: tuple) -> None:
    reference, ours = pair
    assert n_params(ours) == n_params(reference) == 472_330


def test_logits_and_feature_maps_match(pair: tuple) -> None:
    reference, ours = pair
    wave = 0.3 * torch.randn(2, 1, 6000, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        expected, got = reference(wave), ours(wave)
    assert len(got[0]) == 5 and all(len(maps) == 5 for maps in got[1])
    assert_same_outputs(expected, got)
    # The spectrogram is normalised by the window's norm, not torch.stft's 1 / sqrt(n_fft): a wrong
    # normalisation would scale every first feature map, so the comparison above would fail.
    assert got[1][1][0].shape == expected[1][1][0].shape == (2, 32, (6000 - 2048) // 512 + 1, 1025)


def test_state_dict_exports_to_the_reference(pair: tuple) -> None:
    """Our state dict, under EnCodec's keys, loads strictly into a fresh EnCodec module."""
    reference, ours = pair
    fresh = msstftd.MultiScaleSTFTDiscriminator(filters=32, n_ffts=list(ENCODEC_N_FFTS),
                                                hop_lengths=list(ENCODEC_HOP_LENGTHS), win_lengths=list(ENCODEC_N_FFTS))
    fresh.load_state_dict(reference_state_dict(ours))
    for (name, expected), (_, got) in zip(reference.state_dict().items(), fresh.state_dict().items(), strict=True):
        assert torch.equal(expected, got), name


def test_a_hifigan_run_combines_it_with_mpd() -> None:
    cfg = load_config(REPO_ROOT / "configs" / "tiny.yaml",
                      ["model.discriminator.kinds=[mpd, msstftd]", "model.discriminator.msstftd_filters=4",
                       "data.segment_samples=4096"])
    generator, discriminator = build_models(cfg)
    assert [name for name, _ in discriminator.named_children()] == ["mpd", "msstftd"]
    mel = torch.randn(2, cfg.audio.n_mels, 4096 // cfg.audio.hop_length)
    fake = generator(mel)
    logits, features = discriminator(fake)
    assert len(logits) == len(features) == 3 + 5
    assert all(f.shape[1] == 4 for maps in features[3:] for f in maps)
    total = sum(logit.mean() for logit in logits)
    total.backward()
    grads = [p.grad for p in generator.parameters()]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
    assert any(g.abs().sum() > 0 for g in grads)


def test_a_segment_shorter_than_the_widest_window_is_refused() -> None:
    with pytest.raises(ValueError, match="msstftd_n_ffts"):
        load_config(REPO_ROOT / "configs" / "tiny.yaml",
                    ["model.discriminator.kinds=[msstftd]", "data.segment_samples=1024"])
