"""Vocos against its reference code (PyPI ``vocos`` 0.1.0, the parity extra): the official mel
recipe's sizes, a ``vocos.Vocos`` state dict (what a release's ``pytorch_model.bin`` holds) loading
into distgan's generator, and in fp32 on the same inputs: the mel features, the generator's output
(``center`` and ``same`` heads), every discriminator's logits and feature maps, and the hinge,
feature-matching and mel losses combined as ``VocosExp.training_step`` combines them.

All modules are the official recipe's (configs/vocos_mel_24khz.yaml), on 0.4 s clips.
"""

from __future__ import annotations

import contextlib
from types import SimpleNamespace

import pytest
import torch

from distgan.config import load_config
from distgan.families import build_models, front_end
from distgan.families.vocos.modules import ISTFTHead
from distgan.families.vocos.objective import VocosObjective
from distgan.models.reference_weights import load_reference_state_dict
from tests.models.helpers import ATOL, assert_same_outputs, n_params, single_thread
from tests.train.helpers import REPO_ROOT

pytest.importorskip("vocos", reason="the vocos reference package is not installed")
ref_pretrained = pytest.importorskip("vocos.pretrained")
ref_features = pytest.importorskip("vocos.feature_extractors")
ref_models = pytest.importorskip("vocos.models")
ref_heads = pytest.importorskip("vocos.heads")
ref_d = pytest.importorskip("vocos.discriminators")
ref_loss = pytest.importorskip("vocos.loss")

CFG = load_config(REPO_ROOT / "configs" / "vocos_mel_24khz.yaml")
SAMPLES = 9728  # 38 hops: ~0.4 s at 24 kHz


@pytest.fixture(autouse=True)
def _one_thread():
    with single_thread():
        yield


def reference_vocos(padding: str = "center"):
    """vocos.Vocos as ``from_hparams`` builds it from the official mel recipe."""
    g = CFG.model.generator
    return ref_pretrained.Vocos(
        feature_extractor=ref_features.MelSpectrogramFeatures(sample_rate=24000, n_fft=1024, hop_length=256,
                                                              n_mels=100, padding=padding),
        backbone=ref_models.VocosBackbone(input_channels=100, dim=g.dim, intermediate_dim=g.intermediate_dim,
                                          num_layers=g.num_layers),
        head=ref_heads.ISTFTHead(dim=g.dim, n_fft=1024, hop_length=256, padding=padding))


def waves(batch: int = 2, seed: int = 0) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    t = torch.arange(SAMPLES) / 24000
    tone = torch.sin(2 * torch.pi * 220 * t * (1 + torch.rand(batch, 1, generator=generator)))
    return 0.5 * tone + 0.05 * torch.randn(batch, SAMPLES, generator=generator)


def loaded_models():
    torch.manual_seed(0)
    reference = reference_vocos()
    mpd, mrd = ref_d.MultiPeriodDiscriminator(), ref_d.MultiResolutionDiscriminator()
    generator, discriminator = build_models(CFG)
    load_reference_state_dict(generator, reference.state_dict())
    load_reference_state_dict(discriminator.mpd, mpd.state_dict())
    load_reference_state_dict(discriminator.mrd, mrd.state_dict())
    return reference, mpd, mrd, generator, discriminator


def test_parameter_counts_are_the_references() -> None:
    reference = reference_vocos()
    generator, discriminator = build_models(CFG)
    assert n_params(generator) == n_params(reference) == 13_531_650
    assert n_params(discriminator.mpd) == n_params(ref_d.MultiPeriodDiscriminator())
    assert n_params(discriminator.mrd) == n_params(ref_d.MultiResolutionDiscriminator())


def test_release_state_dict_loads_with_its_feature_extractor_buffers_dropped() -> None:
    reference_keys = set(reference_vocos().state_dict())
    generator, _ = build_models(CFG)
    ours = set(generator.state_dict())
    assert ours == {k for k in reference_keys if not k.startswith("feature_extractor.")}
    assert {k for k in reference_keys - ours} == {"feature_extractor.mel_spec.spectrogram.window",
                                                  "feature_extractor.mel_spec.mel_scale.fb"}


def test_features_and_generator_output_equal_the_references() -> None:
    reference, _, _, generator, _ = loaded_models()
    wave = waves()
    features = front_end(CFG.model.generator, CFG.audio)(wave)
    torch.testing.assert_close(features, reference.feature_extractor(wave), rtol=0, atol=ATOL)
    assert features.shape == (2, 100, SAMPLES // 256 + 1)
    with torch.no_grad():
        ours, theirs = generator(features), reference.decode(features)
    assert ours.shape == (2, 1, SAMPLES)
    torch.testing.assert_close(ours.squeeze(1), theirs, rtol=0, atol=ATOL)


def test_same_padding_head_equals_the_references() -> None:
    torch.manual_seed(0)
    theirs = ref_heads.ISTFTHead(dim=64, n_fft=1024, hop_length=256, padding="same")
    ours = ISTFTHead(64, 1024, 256, padding="same")
    ours.load_state_dict(theirs.state_dict())
    x = torch.randn(2, 38, 64)
    with torch.no_grad():
        torch.testing.assert_close(ours(x), theirs(x), rtol=0, atol=ATOL)
    assert ours(x).shape == (2, 38 * 256)


def test_every_discriminators_logits_and_feature_maps_equal_the_references() -> None:
    _, mpd, mrd, _, discriminator = loaded_models()
    wave = waves()
    with torch.no_grad():
        ours = discriminator(wave.unsqueeze(1))
        theirs = ([], [])
        for d in [*mpd.discriminators, *mrd.discriminators]:
            logits, feats = d(x=wave)
            theirs[0].append(logits)
            theirs[1].append(feats)
    assert len(ours[0]) == 8 and [len(f) for f in ours[1]] == [5] * 5 + [21] * 3
    assert_same_outputs(theirs, ours)


def _frozen(discriminator):
    @contextlib.contextmanager
    def frozen():
        yield discriminator

    return frozen


def test_hinge_feature_matching_and_mel_losses_equal_the_references() -> None:
    _, mpd, mrd, _, discriminator = loaded_models()
    objective = VocosObjective(CFG, front_end(CFG.model.generator, CFG.audio), None,
                               SimpleNamespace(device=torch.device("cpu")))
    real, fake = waves(seed=0), waves(seed=1)
    c = CFG.model.generator.mrd_loss_coeff
    with torch.no_grad():
        # VocosExp.training_step's discriminator half.
        real_mp, fake_mp, fmap_r_mp, fmap_g_mp = mpd(y=real, y_hat=fake)
        real_mrd, fake_mrd, fmap_r_mrd, fmap_g_mrd = mrd(y=real, y_hat=fake)
        d_loss = ref_loss.DiscriminatorLoss()
        loss_mp, parts_mp, _ = d_loss(real_mp, fake_mp)
        loss_mrd, parts_mrd, _ = d_loss(real_mrd, fake_mrd)
        d_total = loss_mp / len(parts_mp) + c * loss_mrd / len(parts_mrd)
        # ... and its generator half.
        g_loss, fm_loss = ref_loss.GeneratorLoss(), ref_loss.FeatureMatchingLoss()
        adv_mp, adv_mrd = g_loss(fake_mp)[0] / len(fake_mp), g_loss(fake_mrd)[0] / len(fake_mrd)
        fm_mp, fm_mrd = fm_loss(fmap_r_mp, fmap_g_mp) / len(fmap_r_mp), fm_loss(fmap_r_mrd, fmap_g_mrd) / len(fmap_r_mrd)
        mel = ref_loss.MelSpecReconstructionLoss(sample_rate=24000)(fake, real)
        g_total = adv_mp + c * adv_mrd + fm_mp + c * fm_mrd + 45 * mel

        logits, _ = discriminator(torch.cat([real, fake]).unsqueeze(1))
        terms, total = objective.discriminator_terms([x[:2] for x in logits], [x[2:] for x in logits])
        torch.testing.assert_close(total, d_total[0], rtol=0, atol=ATOL)
        objective.generator_input(real, 0, 0, 0)
        terms, total = objective.generator_terms(real, fake.unsqueeze(1), _frozen(discriminator))
    torch.testing.assert_close(terms["g/mel"], mel, rtol=0, atol=ATOL)
    torch.testing.assert_close(terms["g/adv"], (adv_mp + c * adv_mrd)[0], rtol=0, atol=ATOL)
    torch.testing.assert_close(terms["g/fm"], (fm_mp + c * fm_mrd)[0], rtol=0, atol=ATOL)
    torch.testing.assert_close(total, g_total[0], rtol=0, atol=ATOL)
