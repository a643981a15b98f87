"""EnCodec's release file (Meta's bare ``EncodecModel`` state dict, ``encodec_24khz-d7cc33bc.th``),
both ways, against the ``encodec`` package (parity extra; nothing downloads, the weights are random):

- ``distgan export --format encodec`` of a tiny run loads strictly into an ``EncodecModel`` built
  with the same arguments and decodes the same audio in eval mode;
- an ``encodec_model_24khz`` state dict read by ``train.init_from`` gives the generator its weights,
  a 1-step fine-tuning run of the 24 kHz recipe starts from them, and ``load_codec`` of it (no config: the published 24 kHz layout) encodes and decodes as encodec;
- a layout that differs is refused naming the field, a pickle with code naming the file, and a
  file of something else saying what it holds.
"""

from __future__ import annotations

import math
import pickle
import warnings
from pathlib import Path

import pytest
import torch

from distgan.checkpoint.format import ENGINES, resolve_checkpoint
from distgan.checkpoint.release_config import ReleaseError
from distgan.checkpoint.weights import engine_state_dict
from distgan.config import ConfigError, load_config
from distgan.families import build_models
from distgan.inference.codec import load_codec
from distgan.inference.export_release import export_release
from distgan.train.init_from import check_init_from, load_initial_weights
from tests.models.helpers import single_thread
from tests.train.helpers import REPO_ROOT, run_distgan, train_args

encodec_model = pytest.importorskip("encodec.model", reason="the encodec reference package is not installed")
encodec_modules = pytest.importorskip("encodec.modules")
encodec_quantization = pytest.importorskip("encodec.quantization")
pytestmark = [pytest.mark.filterwarnings("ignore:.*torch.nn.utils.weight_norm.* is deprecated:FutureWarning")]

TINY = REPO_ROOT / "configs" / "encodec_tiny.yaml"
RECIPE = REPO_ROOT / "configs" / "encodec_24khz.yaml"
ATOL = 1e-5


@pytest.fixture(autouse=True)
def _one_thread():
    with single_thread():
        yield


@pytest.fixture(scope="module")
def encodec_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """configs/encodec_tiny.yaml trained 2 steps."""
    run = tmp_path_factory.mktemp("encodec-release") / "run"
    run_distgan(train_args(run, "train.max_steps=2", config=TINY), launcher=None)
    return run


def tiny_reference() -> torch.nn.Module:
    """encodec's EncodecModel with configs/encodec_tiny.yaml's arguments."""
    cfg = load_config(TINY)
    g, rate = cfg.model.generator, cfg.audio.sample_rate
    kwargs = {"dimension": g.dimension, "n_filters": g.n_filters, "ratios": list(g.ratios), "lstm": g.lstm,
              "causal": g.causal, "norm": g.norm}
    encoder, decoder = encodec_modules.SEANetEncoder(**kwargs), encodec_modules.SEANetDecoder(**kwargs)
    n_q = max(g.bandwidth_codebooks(rate))
    assert n_q == int(max(g.target_bandwidths) * 1000 / (math.log2(g.codebook_size) * math.ceil(rate / 32)))
    quantizer = encodec_quantization.ResidualVectorQuantizer(dimension=g.dimension, n_q=n_q, bins=g.codebook_size)
    return encodec_model.EncodecModel(encoder, decoder, quantizer, list(g.target_bandwidths), rate, 1)


def clip(samples: int = 2000) -> torch.Tensor:
    return 0.3 * torch.randn(1, 1, samples, generator=torch.Generator().manual_seed(3))


def test_export_loads_strictly_in_encodec_and_decodes_the_same(encodec_run: Path, tmp_path: Path) -> None:
    (written,) = export_release(encodec_run, tmp_path / "codec.th", "encodec")
    theirs = tiny_reference()
    theirs.load_state_dict(torch.load(written, weights_only=True), strict=True)
    theirs.eval()
    ours, wave = load_codec(encodec_run), clip()
    codes = ours.encode(wave)
    with torch.no_grad():
        theirs.set_target_bandwidth(max(load_config(TINY).model.generator.target_bandwidths))
        (their_codes, _), = theirs.encode(wave)
        audio = theirs.decode([(codes, None)])[..., : wave.shape[-1]]
    assert torch.equal(codes, their_codes)
    torch.testing.assert_close(ours.decode(codes, wave.shape[-1]), audio, rtol=0, atol=ATOL)


@pytest.fixture(scope="module")
def published(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, torch.nn.Module]:
    """encodec_model_24khz's state dict (random weights) as Meta's file holds it."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        model = encodec_model.EncodecModel.encodec_model_24khz(pretrained=False).eval()
    path = tmp_path_factory.mktemp("published") / "encodec_24khz-d7cc33bc.th"
    torch.save(model.state_dict(), path)
    return path, model


def test_init_from_the_published_file_gives_its_weights(published: tuple[Path, torch.nn.Module],
                                                          tmp_path: Path) -> None:
    path, theirs = published
    cfg = load_config(RECIPE, [f"train.init_from={path}"])
    check_init_from(cfg, tmp_path / "run")
    generator, discriminator = build_models(cfg)
    state = load_initial_weights(cfg, tmp_path / "run", generator, discriminator)
    assert state.parts == ["generator"] and "EnCodec release" in state.source.describe()
    ours = generator.state_dict()
    for key, value in theirs.state_dict().items():
        key = key.replace("weight_g", "parametrizations.weight.original0").replace(
            "weight_v", "parametrizations.weight.original1")
        assert torch.equal(ours[key], value), key


def test_a_one_step_fine_tuning_run_starts_from_the_published_file(published: tuple[Path, torch.nn.Module],
                                                                   tmp_path: Path) -> None:
    """The 24 kHz recipe on short clips, 1 step: Adam's first step moves each weight by at most lr,
    so every trained parameter lies within lr of the file's (a fresh init would be far off)."""
    path, theirs = published
    run = tmp_path / "run"
    run_distgan(train_args(run, f"train.init_from={path}", "train.max_steps=1", "data.batch_size=1",
                           "data.segment_samples=3840", "checkpoint.every_steps=1", config=RECIPE), launcher=None)
    lr = load_config(RECIPE).optim.generator.lr
    trained = engine_state_dict(resolve_checkpoint(run), ENGINES[0])
    for key, value in theirs.state_dict().items():
        if "_codebook" in key:
            continue  # EMA buffers: the step's update moves them
        ours = trained[key.replace("weight_g", "parametrizations.weight.original0").replace(
            "weight_v", "parametrizations.weight.original1")]
        assert (ours - value).abs().max() <= 1.01 * lr, key


def test_load_codec_of_the_published_file_equals_encodec(published: tuple[Path, torch.nn.Module]) -> None:
    path, theirs = published
    ours, wave = load_codec(path), clip(24000 // 10)
    with torch.no_grad():
        theirs.set_target_bandwidth(24.0)
        (their_codes, _), = theirs.encode(wave)
        audio = theirs.decode([(their_codes, None)])[..., : wave.shape[-1]]
    codes = ours.encode(wave)
    assert torch.equal(codes, their_codes)
    torch.testing.assert_close(ours.decode(codes, wave.shape[-1]), audio, rtol=0, atol=ATOL)


def test_a_different_layout_is_refused_naming_the_field(published: tuple[Path, torch.nn.Module],
                                                        tmp_path: Path) -> None:
    path, _ = published
    cfg = load_config(RECIPE, [f"train.init_from={path}", "model.generator.n_filters=16"])
    with pytest.raises((ConfigError, ReleaseError), match=r"n_filters=32 but model\.generator\.n_filters=16"):
        check_init_from(cfg, tmp_path / "run")
    tiny = tmp_path / "tiny.th"
    torch.save(tiny_reference().state_dict(), tiny)
    with pytest.raises((ConfigError, ReleaseError), match=r"not the 24 kHz EnCodec layout.*n_filters=4"):
        load_codec(tiny)


class Payload:
    def __reduce__(self):
        return (print, ("ran",))


def test_a_pickle_with_code_or_another_payload_is_refused_naming_the_file(tmp_path: Path) -> None:
    code = tmp_path / "code.th"
    torch.save({"x": Payload()}, code, pickle_module=pickle)
    with pytest.raises((ConfigError, ReleaseError), match="code.th"):
        load_codec(code)
    other = tmp_path / "other.th"
    torch.save({"generator": {"w": torch.zeros(2)}}, other)
    with pytest.raises((ConfigError, ReleaseError), match=r"other\.th: not an EncodecModel state dict"):
        load_codec(other)


def test_the_48khz_stereo_model_and_other_ratios_are_refused(published: tuple[Path, torch.nn.Module],
                                                             tmp_path: Path) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        stereo = encodec_model.EncodecModel.encodec_model_48khz(pretrained=False)
    path = tmp_path / "encodec_48khz-7e698e3e.th"
    torch.save(stereo.state_dict(), path)
    with pytest.raises((ConfigError, ReleaseError), match=r"encodec_48khz-7e698e3e\.th: an EnCodec model of 2 channels"):
        load_codec(path)
    cfg = load_config(RECIPE, [f"train.init_from={published[0]}", "model.generator.ratios=[8,5,4,4]",
                                      "data.segment_samples=19200"])
    with pytest.raises((ConfigError, ReleaseError), match=r"ratios=\[8, 5, 4, 2\] but model\.generator\.ratios"):
        check_init_from(cfg, tmp_path / "run")
