"""DAC's release file (``{"state_dict", "metadata": {"kwargs"}}``, what ``dac.DAC.load`` reads),
both ways, against the ``dac`` package (descript-audio-codec, parity extra):

- ``distgan export --format dac`` writes a ``.pth`` (or ``save_to_folder``'s ``dac/weights.pth``)
  that ``dac.DAC.load`` reads to the same codes and audio as distgan's codec;
- ``train.init_from`` that file gives distgan the run's weights; a config that differs is refused
  naming the kwarg and the field; a ``torch.package`` archive (``DAC.save``'s default) is refused
  naming the file.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest
import torch

from distgan.checkpoint.format import ENGINES, resolve_checkpoint
from distgan.checkpoint.weights import engine_state_dict
from distgan.config import ConfigError, load_config
from distgan.families import build_models
from distgan.inference.codec import load_codec
from distgan.inference.export_release import export_release
from distgan.train.init_from import check_init_from, load_initial_weights
from tests.train.helpers import REPO_ROOT, run_distgan, train_args

dac = pytest.importorskip("dac", reason="the descript-audio-codec reference package is not installed")

DAC_TINY = REPO_ROOT / "configs" / "dac_tiny.yaml"
ATOL = 1e-5


@pytest.fixture(scope="module")
def dac_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """configs/dac_tiny.yaml trained 2 steps."""
    run = tmp_path_factory.mktemp("dac-release") / "run"
    run_distgan(train_args(run, "train.max_steps=2", config=DAC_TINY), launcher=None)
    return run


def _reference(path: Path) -> torch.nn.Module:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # dac builds its layers with the deprecated weight_norm
        return dac.DAC.load(str(path)).eval()


def clip(samples: int = 5000) -> torch.Tensor:
    t = torch.arange(samples) / 16000
    noise = 0.05 * torch.randn(samples, generator=torch.Generator().manual_seed(0))
    return (0.5 * torch.sin(2 * torch.pi * 220 * t) + noise)[None, None]


def test_export_loads_in_dac_and_gives_the_same_codes_and_audio(dac_run: Path, tmp_path: Path) -> None:
    (written,) = export_release(dac_run, tmp_path / "codec.pth", "dac")
    assert written == tmp_path / "codec.pth"
    (in_folder,) = export_release(dac_run, tmp_path / "folder", "dac")
    assert in_folder == tmp_path / "folder" / "dac" / "weights.pth"  # DAC.load_from_folder's layout
    wave, ours = clip(), load_codec(dac_run)
    for path in (written, in_folder):
        reference = _reference(path)
        assert reference.metadata["kwargs"]["n_codebooks"] == ours.n_codebooks == 4
        with torch.no_grad():
            latents, codes, *_ = reference.encode(reference.preprocess(wave, 16000))
            theirs = reference.decode(latents)[..., : wave.shape[-1]]
        our_codes = ours.encode(wave)
        assert torch.equal(our_codes, codes)
        audio = ours.decode(our_codes, wave.shape[-1])
        assert audio.shape == theirs.shape == wave.shape
        torch.testing.assert_close(audio, theirs, rtol=0, atol=ATOL)


def test_init_from_the_exported_file_gives_the_runs_weights(dac_run: Path, tmp_path: Path) -> None:
    (release,) = export_release(dac_run, tmp_path / "codec.pth", "dac")
    cfg = load_config(DAC_TINY, [f"train.init_from={release}"])
    check_init_from(cfg, tmp_path / "run")
    generator, discriminator = build_models(cfg)
    state = load_initial_weights(cfg, tmp_path / "run", generator, discriminator)
    assert state.parts == ["generator"] and "DAC release" in state.source.describe()
    trained = engine_state_dict(resolve_checkpoint(dac_run), ENGINES[0])
    loaded = generator.state_dict()
    assert loaded.keys() == trained.keys()
    assert all(torch.equal(loaded[key], trained[key]) for key in trained)


def test_a_release_of_other_settings_is_refused_naming_the_kwarg_and_the_field(dac_run: Path, tmp_path: Path) -> None:
    (release,) = export_release(dac_run, tmp_path / "codec.pth", "dac")
    cfg = load_config(DAC_TINY, [f"train.init_from={release}", "model.generator.n_codebooks=3",
                                 "audio.sample_rate=24000"])
    with pytest.raises(ConfigError, match=r"metadata.kwargs.n_codebooks=4 but model.generator.n_codebooks=3") as err:
        check_init_from(cfg, tmp_path / "run")
    assert "metadata.kwargs.sample_rate=16000 but audio.sample_rate=24000" in str(err.value)
    with pytest.raises(ConfigError, match=r"DAC release holds the codec only|no discriminator file"):
        check_init_from(load_config(DAC_TINY, [f"train.init_from={release}", "train.init_discriminator=true"]),
                        tmp_path / "run")


def test_a_torch_package_archive_is_refused_naming_the_file(tmp_path: Path) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = dac.DAC(encoder_dim=8, encoder_rates=[2, 4, 4], decoder_dim=64, decoder_rates=[4, 4, 2],
                        n_codebooks=4, codebook_size=64, codebook_dim=4, sample_rate=16000)
        model.save(str(tmp_path / "package.pth"))  # DAC.save's default: a torch.package archive
    package = tmp_path / "package.pth"
    cfg = load_config(DAC_TINY, [f"train.init_from={package}"])
    with pytest.raises(ConfigError, match=rf"{package}: a torch.package archive .* holds Python code"):
        check_init_from(cfg, tmp_path / "run")
    with pytest.raises(ValueError, match="torch.package archive"):
        load_codec(package)
    model.save(str(tmp_path / "weights.pth"), package=False)  # DAC's release layout: loads, same codes
    wave = clip()
    with torch.no_grad():
        _, codes, *_ = model.eval().encode(model.preprocess(wave, 16000))
    assert torch.equal(load_codec(tmp_path / "weights.pth").encode(wave), codes)


def test_a_mel_vocoder_cannot_be_written_as_a_dac_release(tiny_run: Path, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"DAC's code has no hifigan generator \(use --format hifigan\)"):
        export_release(tiny_run, tmp_path / "codec.pth", "dac")
