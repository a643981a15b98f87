"""``distgan synthesize``: mel tensors and wav files in, wav files of the right rate and length out."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile
import torch

from distgan import cli
from distgan.inference.export import export_generator
from distgan.inference.load import Vocoder, load_generator
from distgan.inference.synthesize import Item, synthesize
from tests.inference.helpers import HOP_LENGTH, N_MELS, SAMPLE_RATE, val_clips
from tests.train.helpers import TouchOnLoad, run_distgan

# Frame counts chosen so that every batch below mixes lengths and needs padding.
FRAMES = [37, 90, 64, 12]
PCM16_STEP = 1 / 32768


@pytest.fixture(scope="module")
def exported(tiny_run: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return export_generator(tiny_run, tmp_path_factory.mktemp("export") / "tiny.safetensors")


@pytest.fixture(scope="module")
def vocoder(exported: Path) -> Vocoder:
    return load_generator(exported)


@pytest.fixture(scope="module")
def mels(vocoder: Vocoder) -> list[torch.Tensor]:
    """Log-mels [n_mels, frames] of real clips, one per entry of FRAMES."""
    waves = list(val_clips().values())
    return [vocoder.encode(waves[i % len(waves)][: frames * HOP_LENGTH].unsqueeze(0))[0]
            for i, frames in enumerate(FRAMES)]


def test_batched_output_equals_one_at_a_time(vocoder: Vocoder, mels: list[torch.Tensor]) -> None:
    items = [Item(Path(f"clip{i}.npy"), mel) for i, mel in enumerate(mels)]
    cpu = torch.device("cpu")
    alone = synthesize(vocoder, items, batch_size=1, device=cpu)
    for batch_size in (2, len(items)):
        batched = synthesize(vocoder, items, batch_size=batch_size, device=cpu)
        for frames, one, many in zip(FRAMES, alone, batched, strict=True):
            assert len(one) == len(many) == frames * HOP_LENGTH
            assert np.abs(one).max() > 1e-3
            # Naive padding changes the last few frames by ~1e-4 on this model; fp noise is ~1e-9.
            np.testing.assert_allclose(many, one, rtol=0, atol=1e-6)


def test_npy_pt_and_wav_inputs(exported: Path, vocoder: Vocoder, mels: list[torch.Tensor],
                               tmp_path: Path) -> None:
    inputs = tmp_path / "in"
    inputs.mkdir()
    np.save(inputs / "a.npy", mels[0].numpy())  # [n_mels, frames]
    torch.save(mels[1].unsqueeze(0).clone(), inputs / "b.pt")  # [1, n_mels, frames]
    torch.save(mels[2].clone(), inputs / "c.pt")
    wave = next(iter(val_clips().values()))[: 20 * HOP_LENGTH + 100]  # not a whole number of hops
    soundfile.write(inputs / "d.wav", wave.numpy(), SAMPLE_RATE, subtype="FLOAT")
    out = tmp_path / "out"
    names = ["a.npy", "b.pt", "c.pt", "d.wav"]
    done = run_distgan(["synthesize", "--checkpoint", str(exported), *(str(inputs / n) for n in names),
                        "--out", str(out), "--batch-size", "3"])
    assert "real-time factor" in done.stdout

    expected_frames = {"a": FRAMES[0], "b": FRAMES[1], "c": FRAMES[2], "d": 20}
    assert sorted(p.name for p in out.iterdir()) == ["a.wav", "b.wav", "c.wav", "d.wav"]
    reference = synthesize(vocoder, [Item(Path("x"), mel) for mel in
                                     (*mels[:3], vocoder.encode(wave[: 20 * HOP_LENGTH].unsqueeze(0))[0])],
                           batch_size=1, device=torch.device("cpu"))
    for (stem, frames), expected in zip(expected_frames.items(), reference, strict=True):
        info = soundfile.info(str(out / f"{stem}.wav"))
        assert (info.samplerate, info.channels, info.frames) == (SAMPLE_RATE, 1, frames * HOP_LENGTH), stem
        written, _ = soundfile.read(out / f"{stem}.wav", dtype="float32")
        # libsndfile floors to PCM-16 (an error in (-1, 0] steps), and the separate process adds fp noise
        # (~1e-8): a sample just above a step boundary may land a hair more than one step below.
        np.testing.assert_allclose(written, expected, rtol=0, atol=PCM16_STEP + 1e-7, err_msg=stem)


def test_wrong_n_mels_is_an_error_naming_the_file(exported: Path, tmp_path: Path, capsys) -> None:
    good, bad = tmp_path / "good.npy", tmp_path / "narrow.npy"
    np.save(good, np.full((N_MELS, 10), -5.0, np.float32))
    np.save(bad, np.full((64, 10), -5.0, np.float32))
    assert cli.main(["synthesize", "--checkpoint", str(exported), str(good), str(bad),
                     "--out", str(tmp_path / "out")]) == 2
    message = capsys.readouterr().out
    assert str(bad) in message and "n_mels=80" in message and "(64, 10)" in message
    assert str(good) not in message
    assert not (tmp_path / "out").exists()


def test_wrong_sample_rate_is_an_error_naming_the_file(tiny_run: Path, tmp_path: Path, capsys) -> None:
    wav = tmp_path / "phone.wav"
    soundfile.write(wav, np.zeros(16000, np.float32), 16000)
    assert cli.main(["synthesize", "--checkpoint", str(tiny_run), str(wav), "--out", str(tmp_path / "out")]) == 2
    message = capsys.readouterr().out
    assert str(wav) in message and "16000 Hz" in message and "22050 Hz" in message
    assert not (tmp_path / "out").exists()


def test_inputs_that_would_overwrite_each_other_are_refused(exported: Path, tmp_path: Path, capsys) -> None:
    np.save(tmp_path / "same.npy", np.full((N_MELS, 10), -5.0, np.float32))
    torch.save(torch.full((N_MELS, 10), -5.0), tmp_path / "same.pt")
    assert cli.main(["synthesize", "--checkpoint", str(exported), str(tmp_path / "same.npy"),
                     str(tmp_path / "same.pt"), "--out", str(tmp_path / "out")]) == 2
    assert "would both write same.wav" in capsys.readouterr().out


@pytest.mark.parametrize("kind", ["wav", "npy"])
def test_nan_input_is_refused_naming_the_file(exported: Path, tmp_path: Path, capsys, kind: str) -> None:
    bad = tmp_path / f"broken.{kind}"
    if kind == "wav":
        soundfile.write(bad, np.where(np.arange(8192) % 100, 0.1, np.nan).astype(np.float32), 22050, subtype="FLOAT")
    else:
        np.save(bad, np.where(np.arange(N_MELS * 10).reshape(N_MELS, 10) % 7, -5.0, np.nan).astype(np.float32))
    assert cli.main(["synthesize", "--checkpoint", str(exported), str(bad), "--out", str(tmp_path / "out")]) == 2
    message = capsys.readouterr().out
    assert str(bad) in message and "NaN" in message
    assert not (tmp_path / "out").exists()


def test_a_pt_mel_that_pickles_code_is_refused_in_distgans_words(exported: Path, tmp_path: Path, capsys) -> None:
    marker, poisoned = tmp_path / "payload-ran", tmp_path / "mel.pt"
    torch.save({"mel": torch.full((N_MELS, 10), -5.0), "payload": TouchOnLoad(marker)}, poisoned)
    assert cli.main(["synthesize", "--checkpoint", str(exported), str(poisoned), "--out", str(tmp_path / "out")]) == 2
    message = capsys.readouterr().out
    assert f"{poisoned}: refused to read this mel input: it pickles io.open, which loading would call" in message
    assert "a mel input must hold a tensor only" in message
    assert "weights_only" not in message  # torch's advice to load it anyway is not passed on
    assert not marker.exists() and not (tmp_path / "out").exists()
