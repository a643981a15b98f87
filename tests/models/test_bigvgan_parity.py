"""BigVGAN v1 and v2 against NVIDIA's code (PyPI ``bigvgan`` 2.4.1): the official recipes' sizes and
checkpoint layout, fp32 outputs of the generator and of MPD, MRD and the CQT discriminator, the GAN
losses, the multi-scale mel loss, and the initial weight distribution.

Sizes and checkpoint keys use the full official models, built on the meta device (no memory, no
arithmetic); outputs use the full v1 base model and, for the 112M-parameter v2 recipes, the same
layouts at a width of 128 channels (the code paths are the same; only the widths differ).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import torch

from distgan.families.bigvgan.generator import BigVGANGenerator
from distgan.families.bigvgan.presets import (
    CQT_PRESET,
    GENERATOR_PRESETS,
    MPD_PRESET,
    MRD_PRESET,
    SAMPLE_RATES,
)
from distgan.losses import discriminator_adversarial_loss, feature_matching_loss, generator_adversarial_loss
from distgan.losses.multiscale_mel import MultiScaleMelLoss
from distgan.models.cqt import MultiScaleSubbandCQTDiscriminator
from distgan.models.discriminators import MultiPeriodDiscriminator
from distgan.models.mrd import MultiResolutionDiscriminator
from distgan.models.reference_weights import load_reference_state_dict
from tests.models.helpers import (
    ATOL,
    assert_same_initial_distribution,
    assert_same_outputs,
    n_params,
    randomize_snake,
    single_thread,
)

pytest.importorskip("nnAudio", reason="BigVGAN's CQT discriminator needs nnAudio")
reference = pytest.importorskip("bigvgan.bigvgan", reason="the bigvgan reference package is not installed")
reference_d = pytest.importorskip("bigvgan.discriminators")
reference_loss = pytest.importorskip("bigvgan.loss")
reference_activations = pytest.importorskip("bigvgan.activations")
AttrDict = pytest.importorskip("bigvgan.env").AttrDict

# The generator part of NVIDIA/BigVGAN's configs/<name>.json (v2.4), in its own key names.
_AMP = {"resblock": "1", "resblock_kernel_sizes": [3, 7, 11], "resblock_dilation_sizes": [[1, 3, 5]] * 3,
        "activation": "snakebeta", "snake_logscale": True}
_V2 = {**_AMP, "upsample_initial_channel": 1536, "use_tanh_at_final": False, "use_bias_at_final": False}
OFFICIAL = {
    "v2_22khz_80band_256x": {**_V2, "num_mels": 80, "upsample_rates": [4, 4, 2, 2, 2, 2],
                             "upsample_kernel_sizes": [8, 8, 4, 4, 4, 4], "sampling_rate": 22050},
    "v2_24khz_100band_256x": {**_V2, "num_mels": 100, "upsample_rates": [4, 4, 2, 2, 2, 2],
                              "upsample_kernel_sizes": [8, 8, 4, 4, 4, 4], "sampling_rate": 24000},
    "v2_44khz_128band_512x": {**_V2, "num_mels": 128, "upsample_rates": [8, 4, 2, 2, 2, 2],
                              "upsample_kernel_sizes": [16, 8, 4, 4, 4, 4], "sampling_rate": 44100},
    # v1 leaves use_tanh_at_final and use_bias_at_final out: the code's defaults, True.
    "v1_base_22khz_80band": {**_AMP, "num_mels": 80, "upsample_rates": [8, 8, 2, 2],
                             "upsample_kernel_sizes": [16, 16, 4, 4], "upsample_initial_channel": 512,
                             "sampling_rate": 22050},
}
# The discriminator part, the same in every v2 recipe (MPD + CQT-D) and every v1 recipe (MPD + MRD).
OFFICIAL_D = {"mpd_reshapes": [2, 3, 5, 7, 11], "use_spectral_norm": False, "discriminator_channel_mult": 1,
              "resolutions": [[1024, 120, 600], [2048, 240, 1200], [512, 50, 240]], "cqtd_filters": 128,
              "cqtd_max_filters": 1024, "cqtd_filters_scale": 1, "cqtd_dilations": [1, 2, 4],
              "cqtd_hop_lengths": [512, 256, 256], "cqtd_n_octaves": [9, 9, 9],
              "cqtd_bins_per_octaves": [24, 36, 48]}
NARROW = 128  # width of the v2 layouts whose outputs are compared


# The references use the hook-based weight norm and an STFT without a window.
pytestmark = [pytest.mark.filterwarnings("ignore:A window was not provided:UserWarning"),
              pytest.mark.filterwarnings("ignore:.*torch.nn.utils.weight_norm.* is deprecated:FutureWarning")]


@pytest.fixture(scope="module", autouse=True)
def one_thread() -> Iterator[None]:
    with single_thread():
        yield


def reference_hparams(name: str, **changes: object) -> AttrDict:
    return AttrDict({**OFFICIAL[name], **OFFICIAL_D, **changes})


def our_generator(name: str, **changes: object) -> BigVGANGenerator:
    return BigVGANGenerator(**{**GENERATOR_PRESETS[name], **changes})


@pytest.mark.parametrize("name", sorted(OFFICIAL))
def test_presets_are_the_official_configs(name: str) -> None:
    preset = dict(GENERATOR_PRESETS[name])
    official = {"use_tanh_at_final": True, "use_bias_at_final": True, **OFFICIAL[name]}
    assert {"num_mels": preset.pop("n_mels"), "sampling_rate": SAMPLE_RATES[name], **preset} == official
    cqt = {f"cqtd_{key}": value for key, value in CQT_PRESET.items() if key != "normalize_volume"}
    assert {key: OFFICIAL_D[key] for key in cqt} == cqt
    assert MPD_PRESET == {"periods": OFFICIAL_D["mpd_reshapes"], "channels": [32, 128, 512, 1024, 1024],
                          "use_spectral_norm": False}
    assert MRD_PRESET["resolutions"] == OFFICIAL_D["resolutions"]


@pytest.mark.parametrize("name", sorted(OFFICIAL))
def test_official_generator_sizes_and_checkpoints_match(name: str) -> None:
    with torch.device("meta"):
        ref, ours = reference.BigVGAN(reference_hparams(name)), our_generator(name)
    assert n_params(ours) == n_params(ref)
    assert n_params(ours) == pytest.approx(112e6 if name.startswith("v2") else 14e6, rel=0.1)
    load_reference_state_dict(ours, ref.state_dict())  # strict: raises on any missing, extra or misshapen key
    dropped = [key for key in ref.state_dict() if key.endswith("filter")]
    assert len(dropped) == 2 * sum(1 for m in ours.modules() if type(m).__name__ == "AntiAliasedActivation")


@pytest.fixture(scope="module")
def v1_base() -> tuple[torch.nn.Module, BigVGANGenerator]:
    """The full v1 base model (14M): NVIDIA's, and distgan's still at its own initialisation."""
    torch.manual_seed(0)
    return reference.BigVGAN(reference_hparams("v1_base_22khz_80band")).eval(), our_generator("v1_base_22khz_80band")


def test_initial_weights_have_the_references_effective_distribution(v1_base: tuple) -> None:
    ref, ours = v1_base
    layers = assert_same_initial_distribution(ref, ours, BigVGANGenerator.REFERENCE_RENAMES)
    assert layers == 1 + 4 + 4 * 3 * 6 + 1  # conv_pre, ups, AMP blocks, conv_post
    # Log-scale Snake parameters start at 0 (alpha = beta = 1) in both.
    assert not reference_activations.SnakeBeta(4, alpha_logscale=True).beta.any()
    snake = [value for key, value in ours.state_dict().items() if key.endswith(("alpha", "beta"))]
    assert len(snake) == 2 * (4 * 3 * 6 + 1) and not any(value.any() for value in snake)


@pytest.mark.parametrize("name", sorted(OFFICIAL))
def test_generator_outputs_match(v1_base: tuple, name: str) -> None:
    if name == "v1_base_22khz_80band":  # full size
        ref, ours = v1_base[0], our_generator(name).eval()
    else:
        torch.manual_seed(1)
        ref = reference.BigVGAN(reference_hparams(name, upsample_initial_channel=NARROW)).eval()
        ours = our_generator(name, upsample_initial_channel=NARROW).eval()
    randomize_snake(ref)
    load_reference_state_dict(ours, ref.state_dict())
    mel = torch.randn(2, OFFICIAL[name]["num_mels"], 5, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        expected, actual = ref(mel), ours(mel)
    assert actual.shape == expected.shape == (2, 1, 5 * ours.hop_length)
    assert expected.abs().max() > 1e-3
    torch.testing.assert_close(actual, expected, rtol=0, atol=ATOL)


@pytest.fixture(scope="module")
def discriminator_outputs() -> dict[str, tuple]:
    """NVIDIA's and distgan's MPD, MRD and CQT-D (24 kHz), same weights, on the same real and fake batch.

    MRD and CQT-D are full size; the MPD (41M parameters, HiFi-GAN's, compared at full size in
    test_hifigan_parity) at a quarter of the width, which NVIDIA's ``discriminator_channel_mult`` sets.
    """
    torch.manual_seed(3)
    h = reference_hparams("v2_24khz_100band_256x")
    references = [reference_d.MultiPeriodDiscriminator(AttrDict({**h, "discriminator_channel_mult": 0.25})),
                  reference_d.MultiResolutionDiscriminator(h), reference_d.MultiScaleSubbandCQTDiscriminator(h)]
    ours = [MultiPeriodDiscriminator(**{**MPD_PRESET, "channels": [8, 32, 128, 256, 256]}),
            MultiResolutionDiscriminator(**MRD_PRESET), MultiScaleSubbandCQTDiscriminator(24000, **CQT_PRESET)]
    sizes = [(n_params(ref), n_params(our)) for ref, our in zip(references, ours, strict=True)]
    with torch.device("meta"):
        sizes.append((n_params(reference_d.MultiPeriodDiscriminator(h)), n_params(MultiPeriodDiscriminator(**MPD_PRESET))))
    for ref, our in zip(references, ours, strict=True):
        ref.eval(), our.eval()
        load_reference_state_dict(our, ref.state_dict())
    # Short (the CQT stack is the costly part), odd (MPD pads), longer than MRD's widest padding.
    real, fake = torch.randn(2, 2, 1, 1601, generator=torch.Generator().manual_seed(4)) * 0.3
    outputs: dict[str, tuple] = {"sizes": sizes}
    with torch.no_grad():
        for name, ref, our in zip(("mpd", "mrd", "cqt"), references, ours, strict=True):
            ref_real, ref_fake, ref_real_maps, ref_fake_maps = ref(real, fake)
            outputs[name] = ((ref_real, ref_real_maps), (ref_fake, ref_fake_maps), our(real), our(fake.squeeze(1)))
    return outputs


def test_discriminator_sizes_match(discriminator_outputs: dict) -> None:
    sizes = discriminator_outputs["sizes"]
    for reference_size, our_size in sizes:
        assert our_size == reference_size
    assert sizes[3][0] == pytest.approx(41.1e6, rel=0.01)  # the full MPD


@pytest.mark.parametrize("name", ["mpd", "mrd", "cqt"])
def test_discriminator_logits_and_features_match(discriminator_outputs: dict, name: str) -> None:
    ref_real, ref_fake, real, fake = discriminator_outputs[name]
    assert_same_outputs(ref_real, real)
    assert_same_outputs(ref_fake, fake)
    assert all(logits.abs().max() > 1e-4 for logits in real[0])


def test_gan_losses_match(discriminator_outputs: dict) -> None:
    """Over MPD, MRD and CQT-D together, as NVIDIA's training sums them."""
    parts = [discriminator_outputs[name] for name in ("mpd", "mrd", "cqt")]
    ref_real = [t for part in parts for t in part[0][0]]
    ref_fake = [t for part in parts for t in part[1][0]]
    ref_real_maps = [m for part in parts for m in part[0][1]]
    ref_fake_maps = [m for part in parts for m in part[1][1]]
    real, real_maps = [t for part in parts for t in part[2][0]], [m for part in parts for m in part[2][1]]
    fake, fake_maps = [t for part in parts for t in part[3][0]], [m for part in parts for m in part[3][1]]
    d_real, d_fake = discriminator_adversarial_loss(real, fake, "lsgan")
    torch.testing.assert_close(d_real + d_fake, reference_loss.discriminator_loss(ref_real, ref_fake)[0],
                               rtol=1e-6, atol=ATOL)
    torch.testing.assert_close(generator_adversarial_loss(fake, "lsgan"), reference_loss.generator_loss(ref_fake)[0],
                               rtol=1e-6, atol=ATOL)
    torch.testing.assert_close(2 * feature_matching_loss(real_maps, fake_maps),
                               reference_loss.feature_loss(ref_real_maps, ref_fake_maps), rtol=1e-6, atol=ATOL)


def test_mpd_options_match_the_reference() -> None:
    """BigVGAN's MPD with spectral norm (an option no official recipe takes), at 1/4 of the width."""
    torch.manual_seed(5)
    h = reference_hparams("v1_base_22khz_80band", discriminator_channel_mult=0.25, use_spectral_norm=True)
    ref = reference_d.MultiPeriodDiscriminator(h).eval()
    ours = MultiPeriodDiscriminator([2, 3, 5, 7, 11], [8, 32, 128, 256, 256], use_spectral_norm=True).eval()
    assert n_params(ours) == n_params(ref)
    load_reference_state_dict(ours, ref.state_dict())
    real, fake = torch.randn(2, 1, 1, 2000, generator=torch.Generator().manual_seed(6))
    with torch.no_grad():
        ref_real, _, ref_real_maps, _ = ref(real, fake)
        assert_same_outputs((ref_real, ref_real_maps), ours(real))


@pytest.mark.parametrize("sample_rate", [22050, 44100])
def test_cqt_discriminator_buffers_match_at_other_rates(sample_rate: int) -> None:
    """The CQT kernels depend on the sample rate; the rest of the layout was compared at 24 kHz."""
    ref = reference_d.MultiScaleSubbandCQTDiscriminator(AttrDict({**OFFICIAL_D, "sampling_rate": sample_rate}))
    ours = MultiScaleSubbandCQTDiscriminator(sample_rate, **CQT_PRESET)
    ref_state, our_state = ref.state_dict(), ours.state_dict()
    buffers = [key for key in ref_state if ".cqt_transform." in key or ".resample." in key]
    assert len(buffers) == 3 * 5  # per scale: CQT kernels (2), lengths, low-pass filter; resampling kernel
    for key in buffers:
        torch.testing.assert_close(our_state[key], ref_state[key], rtol=0, atol=0)
    load_reference_state_dict(ours, ref_state)


@pytest.mark.parametrize("sample_rate", [22050, 24000, 44100])
def test_multiscale_mel_loss_matches(sample_rate: int) -> None:
    generator = torch.Generator().manual_seed(7)
    time = torch.arange(8192) / sample_rate
    real = 0.5 * torch.sin(2 * torch.pi * 220 * time) + 0.05 * torch.randn(2, 1, 8192, generator=generator)
    fake = real + 0.1 * torch.randn(real.shape, generator=generator)
    expected = reference_loss.MultiScaleMelSpectrogramLoss(sampling_rate=sample_rate)(fake, real)
    actual = MultiScaleMelLoss(sample_rate)(fake, real)
    assert expected > 0.1
    torch.testing.assert_close(actual, expected, rtol=1e-6, atol=ATOL)
