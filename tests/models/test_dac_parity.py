"""The DAC family against its reference code (PyPI ``descript-audio-codec`` 1.0.0, the parity extra):
the official 44.1 kHz model's sizes and state dicts (``dac.model.DAC``, ``dac.model.Discriminator``)
load into distgan's codec and discriminator, and in fp32 on the same input and weights the codes
are equal and the latents, decoded audio, every discriminator output and every loss term of
``scripts/train.py``'s ``train_loop`` (DAC's ``GANLoss``, ``MelSpectrogramLoss`` with the
conf's settings, the VQ losses, the weighted total) agree, with and without quantizer dropout.

Quantizer dropout: DAC draws ``torch.randint(1, n + 1, (B,))`` from the global RNG inside
``ResidualVectorQuantize.forward`` in training mode; distgan's codec takes the per-clip counts
(its objective draws them from a key, ``codebook_counts``). The test reseeds the global RNG and
draws the same way DAC does, and hands those counts to distgan's codec.

Sizes and state dicts use the official layout; outputs use the same layout at a reduced codec
width (encoder 8, decoder 64: the same code paths) with the full-width discriminator, on
4096-sample clips (8 code frames).
"""

from __future__ import annotations

import contextlib
from types import SimpleNamespace

import pytest
import torch

from distgan.config import AudioConfig, load_config
from distgan.families.dac.codec import DACCodec
from distgan.families.dac.config import DACConfig
from distgan.families.dac.discriminator import DACDiscriminator
from distgan.families.dac.objective import CodecObjective, codebook_counts
from distgan.families.dac.parts import build_discriminator, build_generator
from distgan.models.reference_weights import load_reference_state_dict, map_reference_state_dict
from tests.models.helpers import ATOL, n_params, randomize_snake, single_thread
from tests.train.helpers import REPO_ROOT

pytest.importorskip("dac", reason="the descript-audio-codec reference package is not installed")
ref_model = pytest.importorskip("dac.model")
ref_loss = pytest.importorskip("dac.nn.loss")
AudioSignal = pytest.importorskip("audiotools").AudioSignal
pytestmark = [pytest.mark.filterwarnings("ignore:.*torch.nn.utils.weight_norm.* is deprecated:FutureWarning")]

SAMPLE_RATE, SAMPLES, BATCH = 44100, 4096, 4
# configs/dac_tiny.yaml at the official layout (conf/final/44khz.yml), the codec narrower.
NARROW = {"encoder_dim": 8, "encoder_rates": [2, 4, 8, 8], "decoder_dim": 64, "decoder_rates": [8, 8, 4, 2],
          "n_codebooks": 9, "codebook_size": 1024, "codebook_dim": 8}
CFG = load_config(REPO_ROOT / "configs" / "dac_tiny.yaml", [
    f"audio.sample_rate={SAMPLE_RATE}", f"data.segment_samples={SAMPLES}",
    *(f"model.generator.{key}={value}".replace(" ", "") for key, value in NARROW.items()),
    "model.generator.mpd_periods=[2,3,5,7,11]", "model.generator.mpd_channels=[32,128,512,1024,1024]",
    "model.generator.mrd_fft_sizes=[2048,1024,512]", "model.generator.mrd_channels=32",
    "model.generator.val_codebooks=[1,4]"])
# DAC's lambdas (conf/base.yml), keyed by distgan's term names.
LAMBDAS = {"g/mel": 15.0, "g/fm": 2.0, "g/adv": 1.0, "g/commitment": 0.25, "g/codebook": 1.0}


@pytest.fixture(autouse=True)
def _one_thread():
    with single_thread():
        yield


def waves(batch: int = BATCH, seed: int = 0) -> torch.Tensor:
    """Tones with noise, each clip at its own level and DC offset (D's peak normalisation acts)."""
    generator = torch.Generator().manual_seed(seed)
    t = torch.arange(SAMPLES) / SAMPLE_RATE
    tone = torch.sin(2 * torch.pi * 220 * t * (1 + torch.rand(batch, 1, generator=generator)))
    level = 0.2 + 0.6 * torch.rand(batch, 1, generator=generator)
    return level * tone + 0.05 * torch.randn(batch, SAMPLES, generator=generator) + 0.01


def dac_draws(seed: int, batch: int, n_codebooks: int, share: float) -> torch.Tensor:
    """The counts DAC's quantizer draws in training mode after ``torch.manual_seed(seed)``, drawn its way."""
    torch.manual_seed(seed)
    counts = torch.ones((batch,)) * n_codebooks + 1
    dropout = torch.randint(1, n_codebooks + 1, (batch,))
    dropped = int(batch * share)
    counts[:dropped] = dropout[:dropped]
    return counts.long()


@pytest.fixture(scope="module")
def codecs() -> tuple[torch.nn.Module, DACCodec]:
    """dac.model.DAC at the narrow width (quantizer dropout 0.5, as conf/final/44khz.yml), Snake's
    alphas moved off 1, and distgan's codec with its weights."""
    torch.manual_seed(0)
    reference = ref_model.DAC(**NARROW, quantizer_dropout=0.5, sample_rate=SAMPLE_RATE)
    randomize_snake(reference)
    ours = build_generator(CFG.model.generator, CFG.audio)
    load_reference_state_dict(ours, reference.state_dict())
    return reference, ours


@pytest.fixture(scope="module")
def discriminators() -> tuple[torch.nn.Module, DACDiscriminator]:
    torch.manual_seed(1)
    reference = ref_model.Discriminator(sample_rate=SAMPLE_RATE)
    ours = build_discriminator(CFG)
    load_reference_state_dict(ours, reference.state_dict())
    return reference.train(), ours.train()


def official_models() -> list[tuple[torch.nn.Module, torch.nn.Module]]:
    """(distgan's, DAC's) codec and discriminator at the official 44.1 kHz layout, on the meta device."""
    g = DACConfig()
    with torch.device("meta"):
        return [(build_generator(g, AudioConfig(sample_rate=SAMPLE_RATE)), ref_model.DAC()),
                (DACDiscriminator(g.mpd_periods, g.mrd_fft_sizes, g.mrd_bands, g.mpd_channels, g.mrd_channels),
                 ref_model.Discriminator())]


def test_parameter_counts_are_the_references() -> None:
    (codec, reference), (discriminator, reference_d) = official_models()
    assert n_params(codec) == n_params(reference) == 76_651_890
    assert n_params(discriminator) == n_params(reference_d) == 42_519_760


def test_dacs_state_dicts_map_key_for_key_onto_the_codecs_and_discriminators() -> None:
    for ours, theirs in official_models():
        renames = getattr(type(ours), "REFERENCE_RENAMES", ())
        mapped = map_reference_state_dict(theirs.state_dict(), ours.state_dict().keys(), renames)
        assert mapped.keys() == ours.state_dict().keys()
        assert all(mapped[k].shape == v.shape for k, v in ours.state_dict().items())


def test_state_dict_loads_and_the_weights_are_dacs(codecs) -> None:
    reference, ours = codecs
    theirs = reference.state_dict()
    ours_sd = ours.state_dict()
    layer = "encoder.block.1.block.0.block.1"
    assert torch.equal(ours_sd[f"{layer}.parametrizations.weight.original1"], theirs[f"{layer}.weight_v"])
    assert torch.equal(ours_sd["quantizer.quantizers.3.codebook.weight"], theirs["quantizer.quantizers.3.codebook.weight"])
    assert not torch.equal(ours_sd["encoder.block.1.block.0.block.0.alpha"], torch.ones(1, 8, 1))


@pytest.mark.parametrize("n_quantizers", [None, 4])
def test_codes_latents_and_audio_equal_the_references(codecs, n_quantizers: int | None) -> None:
    reference, ours = codecs
    wave = waves().unsqueeze(1)
    reference.eval(), ours.eval()
    with torch.no_grad():
        theirs = reference(wave, SAMPLE_RATE, n_quantizers)
        output = ours(wave, n_quantizers)
    assert output.codes.shape == (BATCH, n_quantizers or 9, SAMPLES // 512)
    assert torch.equal(output.codes, theirs["codes"])
    torch.testing.assert_close(output.latents, theirs["latents"], rtol=0, atol=ATOL)
    torch.testing.assert_close(output.audio, theirs["audio"], rtol=0, atol=ATOL)
    torch.testing.assert_close(output.commitment_loss, theirs["vq/commitment_loss"], rtol=0, atol=ATOL)
    # Inference's encode/decode: the same codes, and the audio of their quantized latents.
    codes = ours.encode(wave, n_quantizers)
    assert torch.equal(codes, theirs["codes"])
    with torch.no_grad():
        torch.testing.assert_close(ours.decode(codes, SAMPLES), reference.decode(theirs["z"])[..., :SAMPLES],
                                   rtol=0, atol=ATOL)


def discriminator_outputs(discriminators):
    """(DAC's feature maps per sub-discriminator, the logits in them last; distgan's logits and maps)."""
    reference, ours = discriminators
    wave = waves().unsqueeze(1)
    with torch.no_grad():
        return reference(wave), ours(wave)


def test_every_discriminators_logits_and_feature_maps_equal_the_references(discriminators) -> None:
    """The multi-band D's STFT takes audiotools' window (scipy's float64 Hann cast to float32): with
    torch's float32 one its first maps (values ~170) were 3.4e-5 apart."""
    theirs, (logits, feats) = discriminator_outputs(discriminators)
    assert len(logits) == len(theirs) == 8 and [len(f) for f in feats] == [len(maps) for maps in theirs] \
        == [6] * 5 + [26] * 3
    for maps, our_logits, our_maps in zip(theirs, logits, feats, strict=True):
        torch.testing.assert_close(our_logits, maps[-1].flatten(1), rtol=0, atol=ATOL)
        for their_map, our_map in zip(maps, our_maps, strict=True):
            torch.testing.assert_close(our_map, their_map, rtol=0, atol=ATOL)


def test_codebook_counts_differ_across_ranks_and_repeat_for_the_same_key() -> None:
    def counts(rank: int, step: int = 7) -> torch.Tensor:
        return codebook_counts(64, 9, 0.5, (1234, "quantizer_dropout", step, rank, 0))

    assert torch.equal(counts(0), counts(0))
    assert not torch.equal(counts(0), counts(1))
    assert not torch.equal(counts(0, step=8), counts(0))
    drawn = counts(0)
    assert drawn[:32].min() >= 1 and drawn[:32].max() <= 9 and len(set(drawn[:32].tolist())) > 1
    assert (drawn[32:] == 10).all()  # the rest count every codebook


def _frozen(discriminator):
    @contextlib.contextmanager
    def frozen():
        yield discriminator

    return frozen


def dac_train_loop_terms(reference, reference_d, wave: torch.Tensor, seed: int) -> dict[str, torch.Tensor]:
    """``train_loop``'s loss terms (before any update) from DAC's code, keyed by distgan's names."""
    mel_loss = ref_loss.MelSpectrogramLoss(n_mels=[5, 10, 20, 40, 80, 160, 320],
                                           window_lengths=[32, 64, 128, 256, 512, 1024, 2048],
                                           mel_fmin=[0.0] * 7, mel_fmax=[None] * 7, pow=1.0, clamp_eps=1e-5,
                                           mag_weight=0.0)
    gan_loss = ref_loss.GANLoss(reference_d)
    torch.manual_seed(seed)
    out = reference(wave.unsqueeze(1), SAMPLE_RATE)
    recons, signal = AudioSignal(out["audio"], SAMPLE_RATE), AudioSignal(wave.unsqueeze(1), SAMPLE_RATE)
    terms = {"d/total": gan_loss.discriminator_loss(recons, signal), "g/mel": mel_loss(recons, signal)}
    terms["g/adv"], terms["g/fm"] = gan_loss.generator_loss(recons, signal)
    terms["g/commitment"], terms["g/codebook"] = out["vq/commitment_loss"], out["vq/codebook_loss"]
    terms["g/total"] = sum(weight * terms[name] for name, weight in LAMBDAS.items())
    return {**terms, "codes": out["codes"], "latents": out["latents"], "audio": out["audio"]}


@pytest.mark.parametrize("share", [0.0, 0.5])
def test_every_loss_term_equals_dacs_train_loop_with_and_without_quantizer_dropout(codecs, discriminators,
                                                                                   share: float) -> None:
    reference, ours = codecs
    reference_d, discriminator = discriminators
    reference.train(), ours.train()
    reference.quantizer.quantizer_dropout = share
    seed, wave = 3, waves()
    counts = dac_draws(seed, BATCH, 9, share)
    if share:  # the draws do drop codebooks for the first half, and differ between its clips
        assert counts[:2].max() < 9 and counts[0] != counts[1] and (counts[2:] == 10).all()
    cfg = load_config(REPO_ROOT / "configs" / "dac_tiny.yaml", [f"audio.sample_rate={SAMPLE_RATE}",
                                                                 f"model.generator.quantizer_dropout={share}"])
    objective = CodecObjective(cfg, None, None, SimpleNamespace(device=torch.device("cpu")))
    theirs = dac_train_loop_terms(reference, reference_d, wave, seed)
    output = ours(wave.unsqueeze(1), counts)
    assert torch.equal(output.codes, theirs["codes"])
    torch.testing.assert_close(output.latents, theirs["latents"], rtol=0, atol=ATOL)
    torch.testing.assert_close(output.audio, theirs["audio"], rtol=0, atol=ATOL)
    with torch.no_grad():
        logits, _ = discriminator(torch.cat([wave.unsqueeze(1), output.audio.detach()]))
        d_terms, d_total = objective.discriminator_terms([x[:BATCH] for x in logits], [x[BATCH:] for x in logits])
    torch.testing.assert_close(d_total, theirs["d/total"], rtol=0, atol=ATOL)
    assert set(d_terms) == {"d/real", "d/fake"}
    terms, total = objective.generator_terms(wave, output, _frozen(discriminator))
    assert set(terms) == set(LAMBDAS)
    for name in LAMBDAS:
        torch.testing.assert_close(terms[name], theirs[name], rtol=0, atol=ATOL, msg=name)
    # The total is ~100: 1e-5 of it is float32's rounding of a sum of that size, not a difference.
    torch.testing.assert_close(total, theirs["g/total"], rtol=1e-6, atol=ATOL)
