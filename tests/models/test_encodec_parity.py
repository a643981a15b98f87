"""The EnCodec family against its reference code (PyPI ``encodec`` 0.1.1, the parity extra).

- the 24 kHz recipe (``configs/encodec_24khz.yaml``) is ``EncodecModel.encodec_model_24khz``'s
  layout: the same parameter count, and its state dict loads into distgan's codec as it is
  (strict; distgan's codebooks add a ``steps`` buffer, which defaults to 0) and back;
- on the same weights and buffers, a narrow layout of the same code paths (causal and not, LSTM,
  weight norm; EMA codebooks at each target bandwidth) gives the same latents, codes and decoded
  audio as ``EncodecModel.encode``/``decode`` in eval mode, and in training mode the same
  quantized latents, codes, commitment loss, decoded audio and updated codebook buffers as the
  encoder -> ``ResidualVectorQuantizer.forward`` -> decoder path audiocraft trains through.
Within 1e-5 (fp32, one thread). The training-mode state is an initialised one in which no code
expires: encodec's k-means start and restarts draw from the global RNG (distgan's from a keyed
generator, ``distgan.models.ema_quantize``), and ``tests/models/test_ema_quantize_parity.py``
covers the quantizer's own cases.
"""

from __future__ import annotations

import math

import pytest
import torch

from distgan.config import load_config
from distgan.families.encodec.codec import EncodecCodec
from distgan.families.encodec.parts import build_generator
from tests.models.helpers import n_params, single_thread
from tests.train.helpers import REPO_ROOT

encodec_model = pytest.importorskip("encodec.model", reason="the encodec reference package is not installed")
encodec_modules = pytest.importorskip("encodec.modules")
encodec_quantization = pytest.importorskip("encodec.quantization")
pytestmark = [pytest.mark.filterwarnings("ignore:.*torch.nn.utils.weight_norm.* is deprecated:FutureWarning")]

TOL = {"rtol": 1e-5, "atol": 1e-5}
RECIPE = REPO_ROOT / "configs" / "encodec_24khz.yaml"
SAMPLE_RATE = 24000
# The 24 kHz layout, narrower: ratios of hop 64 (375 frames/s), 8 codebooks of 64 entries
# (2.25 kbps each), bandwidths 2.25 / 4.5 / 18 kbps -> 1, 2, 8 codebooks.
NARROW = {"dimension": 16, "n_filters": 4, "ratios": [4, 4, 4], "lstm": 2, "codebook_size": 64,
          "target_bandwidths": [2.25, 4.5, 18.0]}


@pytest.fixture(autouse=True)
def _one_thread():
    with single_thread():
        yield


def narrow_pair(causal: bool) -> tuple[torch.nn.Module, EncodecCodec]:
    """encodec's model and distgan's codec of the NARROW layout, on the same random weights."""
    g = NARROW
    kwargs = {"dimension": g["dimension"], "n_filters": g["n_filters"], "ratios": g["ratios"], "lstm": g["lstm"],
              "causal": causal, "norm": "weight_norm"}
    encoder, decoder = encodec_modules.SEANetEncoder(**kwargs), encodec_modules.SEANetDecoder(**kwargs)
    frame_rate = math.ceil(SAMPLE_RATE / encoder.hop_length)
    n_q = int(max(g["target_bandwidths"]) * 1000 / (math.log2(g["codebook_size"]) * frame_rate))
    quantizer = encodec_quantization.ResidualVectorQuantizer(dimension=g["dimension"], n_q=n_q, bins=g["codebook_size"],
                                                              kmeans_iters=4)
    theirs = encodec_model.EncodecModel(encoder, decoder, quantizer, g["target_bandwidths"], SAMPLE_RATE, 1)
    overrides = [f"model.generator.{k}={v}".replace(" ", "") for k, v in g.items()]
    cfg = load_config(RECIPE, [*overrides, f"model.generator.causal={str(causal).lower()}",
                               f"model.generator.trim_right_ratio={1.0}", "model.generator.kmeans_iters=4"])
    ours = build_generator(cfg.model.generator, cfg.audio)
    torch.manual_seed(0)
    state = theirs.state_dict()
    for name, tensor in state.items():  # weights away from their init; codebooks initialised, no code near expiry
        if name.endswith("_codebook.inited"):
            tensor.fill_(1.0)
        elif name.endswith("_codebook.embed"):
            tensor.copy_(torch.randn_like(tensor) * 0.5)
        elif name.endswith("_codebook.cluster_size"):
            tensor.copy_(5.0 + 20 * torch.rand_like(tensor))
        elif tensor.is_floating_point() and "_codebook" not in name:
            tensor.add_(0.05 * torch.randn_like(tensor))
    for name in [n for n in state if n.endswith("_codebook.embed_avg")]:
        prefix = name[: -len("embed_avg")]
        state[name] = state[prefix + "embed"] * state[prefix + "cluster_size"][:, None]
    theirs.load_state_dict(state)
    assert ours.load_state_dict(state, strict=True).missing_keys == []
    assert ours.n_codebooks == n_q == 8
    return theirs, ours


def clips(batch: int = 2, samples: int = 64 * 30) -> torch.Tensor:
    return 0.3 * torch.randn(batch, 1, samples, generator=torch.Generator().manual_seed(3))


def test_the_24khz_recipe_is_encodec_model_24khz() -> None:
    cfg = load_config(RECIPE)
    ours = build_generator(cfg.model.generator, cfg.audio)
    theirs = encodec_model.EncodecModel.encodec_model_24khz(pretrained=False)
    assert n_params(ours) == n_params(theirs) == 14_851_810
    assert [ours.num_quantizers(bw) for bw in cfg.model.generator.target_bandwidths] == [2, 4, 8, 16, 32]
    assert ours.frame_rate == theirs.frame_rate == 75
    state = theirs.state_dict()
    assert ours.load_state_dict(state, strict=True).missing_keys == []
    back = {k.replace("parametrizations.weight.original0", "weight_g").replace("parametrizations.weight.original1",
                                                                                 "weight_v"): v
            for k, v in ours.state_dict().items() if not k.endswith("._codebook.steps")}  # encodec's weight-norm keys
    assert sorted(back) == sorted(state)
    assert all(torch.equal(back[k], state[k]) for k in state)
    theirs.load_state_dict(back)


@pytest.mark.parametrize("causal", [True, False])
def test_eval_encode_and_decode_equal_encodec(causal: bool) -> None:
    theirs, ours = narrow_pair(causal)
    theirs.eval(), ours.eval()
    audio = clips()
    with torch.no_grad():
        torch.testing.assert_close(ours.encoder(audio), theirs.encoder(audio), **TOL)
        for bandwidth in NARROW["target_bandwidths"]:
            theirs.set_target_bandwidth(bandwidth)
            (codes, scale), = theirs.encode(audio)
            assert scale is None
            ours_codes = ours.encode(audio, ours.num_quantizers(bandwidth))
            assert ours_codes.shape == codes.shape and torch.equal(ours_codes, codes), bandwidth
            torch.testing.assert_close(ours.decode(ours_codes, audio.shape[-1]), theirs.decode([(codes, None)]), **TOL)
            output = ours(audio, ours.num_quantizers(bandwidth))
            torch.testing.assert_close(output.audio, theirs(audio), **TOL)


@pytest.mark.parametrize("bandwidth", NARROW["target_bandwidths"])
def test_a_training_step_equals_encodec(bandwidth: float) -> None:
    """Training mode: the forward audiocraft trains through, and the codebooks it leaves."""
    theirs, ours = narrow_pair(causal=True)
    theirs.train(), ours.train()
    audio = clips()
    start = {name: tensor.clone() for name, tensor in theirs.state_dict().items()}
    latents = theirs.encoder(audio)
    result = theirs.quantizer(latents, theirs.frame_rate, bandwidth)
    their_audio = theirs.decoder(result.quantized)[..., : audio.shape[-1]]
    output = ours(audio, ours.num_quantizers(bandwidth))
    torch.testing.assert_close(output.latents, latents, **TOL)
    assert torch.equal(output.codes, result.codes.transpose(0, 1))
    torch.testing.assert_close(output.commitment_loss, result.penalty, **TOL)
    torch.testing.assert_close(output.audio, their_audio, **TOL)
    theirs_state, ours_state = theirs.state_dict(), ours.state_dict()
    moved = 0
    for name, tensor in theirs_state.items():
        if "_codebook." in name:
            torch.testing.assert_close(ours_state[name], tensor, **TOL, msg=name)
            moved += not torch.equal(tensor, start[name])
    assert moved >= 3 * ours.num_quantizers(bandwidth)  # cluster_size, embed_avg, embed of every layer that ran
