"""HiFi-GAN V1-V3 against jik876/hifi-gan (PyPI ``hifi-gan`` 0.0.2): sizes, checkpoint loading,
fp32 outputs of the generator, MPD and MSD, the GAN losses, and the initial weight distribution."""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Iterator

import pytest
import torch

from distgan.config import DiscriminatorConfig
from distgan.families.hifigan.generator import GENERATOR_PRESETS, HiFiGANGenerator
from distgan.losses import discriminator_adversarial_loss, feature_matching_loss, generator_adversarial_loss
from distgan.models.discriminators import Discriminators
from distgan.models.reference_weights import load_reference_state_dict
from tests.models.helpers import (
    ATOL,
    assert_same_initial_distribution,
    assert_same_outputs,
    n_params,
    single_thread,
)

reference = pytest.importorskip("hifi_gan.models", reason="the hifi-gan reference package is not installed")
AttrDict = pytest.importorskip("hifi_gan.env").AttrDict

# jik876/hifi-gan's config_v1.json, config_v2.json and config_v3.json (the generator part).
OFFICIAL = {
    "v1": {"resblock": "1", "upsample_rates": [8, 8, 2, 2], "upsample_kernel_sizes": [16, 16, 4, 4],
           "upsample_initial_channel": 512, "resblock_kernel_sizes": [3, 7, 11],
           "resblock_dilation_sizes": [[1, 3, 5], [1, 3, 5], [1, 3, 5]]},
    "v2": {"resblock": "1", "upsample_rates": [8, 8, 2, 2], "upsample_kernel_sizes": [16, 16, 4, 4],
           "upsample_initial_channel": 128, "resblock_kernel_sizes": [3, 7, 11],
           "resblock_dilation_sizes": [[1, 3, 5], [1, 3, 5], [1, 3, 5]]},
    "v3": {"resblock": "2", "upsample_rates": [8, 8, 4], "upsample_kernel_sizes": [16, 16, 8],
           "upsample_initial_channel": 256, "resblock_kernel_sizes": [3, 5, 7],
           "resblock_dilation_sizes": [[1, 2], [2, 6], [3, 12]]},
}
N_MELS = 80  # the reference's generator hard-codes 80 mel bands


# The references use the hook-based weight norm.
pytestmark = [pytest.mark.filterwarnings("ignore:.*torch.nn.utils.weight_norm.* is deprecated:FutureWarning")]


@pytest.fixture(scope="module", autouse=True)
def one_thread() -> Iterator[None]:
    with single_thread():
        yield


@pytest.fixture(scope="module")
def generators() -> dict[str, tuple[torch.nn.Module, HiFiGANGenerator]]:
    """Per version, (reference, distgan) generators, each freshly initialised."""
    torch.manual_seed(0)
    return {name: (reference.Generator(AttrDict(config)).eval(),
                   HiFiGANGenerator(GENERATOR_PRESETS[name], n_mels=N_MELS).eval())
            for name, config in OFFICIAL.items()}


@pytest.mark.parametrize("name", sorted(OFFICIAL))
def test_presets_are_the_official_configs(name: str) -> None:
    preset = dataclasses.asdict(GENERATOR_PRESETS[name])
    assert {key: preset[key] for key in OFFICIAL[name]} == OFFICIAL[name]
    assert preset["family"] == "hifigan"


@pytest.mark.parametrize("name", sorted(OFFICIAL))
def test_generator_size_checkpoint_and_output_match(generators: dict, name: str) -> None:
    ref, ours = generators[name]
    assert n_params(ours) == n_params(ref)
    load_reference_state_dict(ours, ref.state_dict())
    mel = torch.randn(2, N_MELS, 6, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        expected, actual = ref(mel), ours(mel)
    assert actual.shape == expected.shape == (2, 1, 6 * ours.hop_length)
    assert expected.abs().max() > 1e-3  # a real comparison, not of two near-zero signals
    torch.testing.assert_close(actual, expected, rtol=0, atol=ATOL)


def test_a_checkpoint_saved_without_weight_norm_loads_either_way(generators: dict) -> None:
    ref, _ = generators["v3"]
    folded_ref = copy.deepcopy(ref)
    folded_ref.remove_weight_norm()
    mel = torch.randn(1, N_MELS, 4, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        expected = ref(mel)
    weight_normed = HiFiGANGenerator(GENERATOR_PRESETS["v3"], n_mels=N_MELS).eval()
    load_reference_state_dict(weight_normed, folded_ref.state_dict())  # plain weight -> g, v
    folded = HiFiGANGenerator(GENERATOR_PRESETS["v3"], n_mels=N_MELS).eval()
    folded.remove_weight_norm()
    load_reference_state_dict(folded, ref.state_dict())  # g, v -> plain weight
    with torch.no_grad():
        torch.testing.assert_close(weight_normed(mel), expected, rtol=0, atol=ATOL)
        torch.testing.assert_close(folded(mel), expected, rtol=0, atol=ATOL)


def test_initial_weights_have_the_references_effective_distribution(generators: dict) -> None:
    """The reference's N(0, 0.01) draw is overwritten by weight norm; both start at PyTorch's default."""
    ref, _ = generators["v1"]
    torch.manual_seed(3)
    ours = HiFiGANGenerator(GENERATOR_PRESETS["v1"], n_mels=N_MELS)  # not yet loaded from the reference
    layers = assert_same_initial_distribution(ref, ours, HiFiGANGenerator.REFERENCE_RENAMES)
    assert layers == 1 + 4 + 4 * 3 * 6 + 1  # conv_pre, ups, resblocks, conv_post
    # The layer where the two schemes differ most: 0.037 effective, against 0.01 drawn.
    assert ours.conv_post.weight.std().item() > 0.03


@pytest.fixture(scope="module")
def discriminator_outputs() -> dict[str, tuple]:
    """Reference and distgan MPD + MSD on the same real and fake batch, with the reference's weights."""
    torch.manual_seed(4)
    ref_mpd, ref_msd = reference.MultiPeriodDiscriminator().eval(), reference.MultiScaleDiscriminator().eval()
    ours = Discriminators(DiscriminatorConfig()).eval()
    sizes = {"mpd": (n_params(ref_mpd), n_params(ours.mpd)), "msd": (n_params(ref_msd), n_params(ours.msd))}
    load_reference_state_dict(ours.mpd, ref_mpd.state_dict())
    load_reference_state_dict(ours.msd, ref_msd.state_dict())  # scale 0 is spectral-normed
    real, fake = torch.randn(2, 2, 1, 3001, generator=torch.Generator().manual_seed(5)) * 0.3
    with torch.no_grad():
        mpd_r, mpd_g, mpd_fr, mpd_fg = ref_mpd(real, fake)
        msd_r, msd_g, msd_fr, msd_fg = ref_msd(real, fake)
        return {"sizes": sizes,
                "reference_real": (mpd_r + msd_r, mpd_fr + msd_fr), "reference_fake": (mpd_g + msd_g, mpd_fg + msd_fg),
                "real": ours(real), "fake": ours(fake.squeeze(1))}  # [B, T] is accepted too


def test_discriminator_sizes_match(discriminator_outputs: dict) -> None:
    for reference_size, our_size in discriminator_outputs["sizes"].values():
        assert our_size == reference_size


def test_discriminator_logits_and_features_match(discriminator_outputs: dict) -> None:
    assert_same_outputs(discriminator_outputs["reference_real"], discriminator_outputs["real"])
    assert_same_outputs(discriminator_outputs["reference_fake"], discriminator_outputs["fake"])
    assert len(discriminator_outputs["real"][0]) == 5 + 3


def test_gan_losses_match(discriminator_outputs: dict) -> None:
    (ref_real, ref_real_maps), (ref_fake, ref_fake_maps) = (discriminator_outputs["reference_real"],
                                                            discriminator_outputs["reference_fake"])
    (real, real_maps), (fake, fake_maps) = discriminator_outputs["real"], discriminator_outputs["fake"]
    d_real, d_fake = discriminator_adversarial_loss(real, fake, "lsgan")
    ref_d_loss, ref_d_real, ref_d_fake = reference.discriminator_loss(ref_real, ref_fake)
    torch.testing.assert_close(d_real + d_fake, ref_d_loss, rtol=1e-6, atol=ATOL)
    assert d_real.item() == pytest.approx(sum(ref_d_real), rel=1e-5)
    assert d_fake.item() == pytest.approx(sum(ref_d_fake), rel=1e-5)
    torch.testing.assert_close(generator_adversarial_loss(fake, "lsgan"), reference.generator_loss(ref_fake)[0],
                               rtol=1e-6, atol=ATOL)
    # The reference folds the feature-matching weight (2) into its loss; distgan keeps it in LossConfig.
    torch.testing.assert_close(2 * feature_matching_loss(real_maps, fake_maps),
                               reference.feature_loss(ref_real_maps, ref_fake_maps), rtol=1e-6, atol=ATOL)
