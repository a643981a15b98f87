"""Using a codec: ``distgan encode`` / ``distgan decode`` on a real clip, and ``load_codec``.

One tiny DAC run (configs/dac_tiny.yaml at 22.05 kHz, LJSpeech's rate, 2 steps) serves every test.
"""

from __future__ import annotations

import dataclasses
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile
import torch

from distgan import cli
from distgan.inference.codec import load_codec
from distgan.inference.codes import read_codes, write_codes
from tests.train.helpers import REPO_ROOT, run_distgan, subprocess_env, train_args

DAC_TINY = REPO_ROOT / "configs" / "dac_tiny.yaml"
RATE, HOP, CODEBOOKS, CODEBOOK_SIZE = 22050, 32, 4, 64  # dac_tiny: strides 2 x 4 x 4, 4 codebooks of 64
CLIP = "LJ001-0008.wav"  # the shortest of ljspeech-mini: 39325 samples, not a multiple of the hop


@pytest.fixture(scope="module")
def codec_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    run = tmp_path_factory.mktemp("codec") / "run"
    run_distgan(train_args(run, "train.max_steps=2", f"audio.sample_rate={RATE}", config=DAC_TINY), launcher=None)
    return run


@pytest.fixture()
def clip(ljspeech_mini: Path) -> Path:
    return ljspeech_mini / "wavs" / CLIP


def test_encode_writes_codes_and_their_settings_and_decode_restores_the_length(
        codec_run: Path, clip: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert cli.main(["encode", "--checkpoint", str(codec_run), str(clip), "--out", str(tmp_path / "codes")]) == 0
    printed = capsys.readouterr().out
    assert "bitrate: 4 codebooks x log2(64) bits x 689.062 frames/s = 16.54 kbit/s" in printed  # 4 x 6 x 22050 / 32
    assert "resampled" not in printed  # the clip is at the codec's rate
    samples = soundfile.info(clip).frames
    codes, info = read_codes(tmp_path / "codes" / "LJ001-0008.codes.safetensors")
    assert codes.dtype == torch.int64 and tuple(codes.shape) == (CODEBOOKS, -(-samples // HOP))
    assert 0 <= int(codes.min()) and int(codes.max()) < CODEBOOK_SIZE
    assert (info.sample_rate, info.hop_length, info.codebook_size, info.n_codebooks, info.length) == (
        RATE, HOP, CODEBOOK_SIZE, CODEBOOKS, samples)
    assert info.checkpoint == str(codec_run.resolve()) and info.family == "dac"
    # No --checkpoint: decode finds the codec the file records.
    assert cli.main(["decode", str(tmp_path / "codes" / "LJ001-0008.codes.safetensors"), "--out",
                     str(tmp_path / "wavs")]) == 0
    assert "16.54 kbit/s" in capsys.readouterr().out
    decoded, rate = soundfile.read(tmp_path / "wavs" / "LJ001-0008.wav")
    assert rate == RATE and decoded.shape == (samples,)


def test_fewer_quantizers_are_the_first_codebooks_at_a_lower_bitrate(
        codec_run: Path, clip: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    for k in (4, 2):
        assert cli.main(["encode", "--checkpoint", str(codec_run), str(clip), "--out", str(tmp_path / f"k{k}"),
                         "--n-quantizers", str(k)]) == 0
    printed = capsys.readouterr().out
    assert "bitrate: 2 codebooks x log2(64) bits x 689.062 frames/s = 8.27 kbit/s" in printed
    full, _ = read_codes(tmp_path / "k4" / "LJ001-0008.codes.safetensors")
    two, info = read_codes(tmp_path / "k2" / "LJ001-0008.codes.safetensors")
    assert info.n_codebooks == 2 and info.model_codebooks == 4
    assert torch.equal(two, full[:2])  # the residual quantizer stops after two codebooks
    assert cli.main(["decode", str(tmp_path / "k4" / "LJ001-0008.codes.safetensors"), "--out",
                     str(tmp_path / "wavs"), "--checkpoint", str(codec_run), "--n-quantizers", "1"]) == 0
    assert "bitrate: 1 codebooks x log2(64) bits x 689.062 frames/s = 4.13 kbit/s" in capsys.readouterr().out
    assert cli.main(["encode", "--checkpoint", str(codec_run), str(clip), "--out", str(tmp_path / "k5"),
                     "--n-quantizers", "5"]) == 2
    assert "between 1 and the codec's 4 codebooks" in capsys.readouterr().out


def test_other_rates_are_resampled_and_channels_averaged_with_a_message(
        codec_run: Path, clip: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    wave, _ = soundfile.read(clip, dtype="float32")
    stereo = tmp_path / "stereo.wav"
    soundfile.write(stereo, np.stack([wave, 0.5 * wave], axis=1)[::2], RATE // 2)  # 11025 Hz, two channels
    assert cli.main(["encode", "--checkpoint", str(codec_run), str(stereo), "--out", str(tmp_path)]) == 0
    printed = capsys.readouterr().out
    assert f"{stereo}: 2 channels, averaged to mono" in printed
    assert f"{stereo}: resampled from 11025 Hz to the codec's 22050 Hz" in printed
    _, info = read_codes(tmp_path / "stereo.codes.safetensors")
    assert info.source_sample_rate == RATE // 2 and info.length == 2 * len(wave[::2])


def test_decode_refuses_codes_of_another_codec(codec_run: Path, tmp_path: Path,
                                               capsys: pytest.CaptureFixture) -> None:
    assert cli.main(["encode", "--checkpoint", str(codec_run), str(_silence(tmp_path)), "--out", str(tmp_path)]) == 0
    codes, info = read_codes(tmp_path / "silence.codes.safetensors")
    other = tmp_path / "other.codes.safetensors"
    write_codes(other, codes, dataclasses.replace(info, sample_rate=16000))
    capsys.readouterr()
    assert cli.main(["decode", str(other), "--out", str(tmp_path / "wavs")]) == 2
    assert "encoded with sample_rate=16000, but the codec's is 22050" in capsys.readouterr().out


def _silence(folder: Path) -> Path:
    path = folder / "silence.wav"
    soundfile.write(path, np.zeros(4 * HOP, dtype=np.float32), RATE)
    return path


def test_a_mel_vocoder_is_refused_by_encode_and_a_codec_by_synthesize(
        codec_run: Path, tiny_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    wav = _silence(tmp_path)
    assert cli.main(["encode", "--checkpoint", str(tiny_run), str(wav), "--out", str(tmp_path / "codes")]) == 2
    printed = capsys.readouterr().out
    assert "is a hifigan run: its generator turns mel spectrograms into audio" in printed
    assert "(distgan synthesize is its command)" in printed
    assert cli.main(["synthesize", "--checkpoint", str(codec_run), str(wav), "--out", str(tmp_path / "out")]) == 2
    printed = capsys.readouterr().out
    assert "is a dac run: its generator turns audio (a codec) into audio" in printed
    assert "(distgan encode / decode is its command)" in printed


def test_load_codec_reads_a_run_and_its_export_without_training_code(codec_run: Path, tmp_path: Path) -> None:
    export = tmp_path / "codec.safetensors"
    assert cli.main(["export", str(codec_run), str(export)]) == 0
    code = ("import sys, torch, distgan\n"
            "codec = distgan.load_codec(sys.argv[1])\n"
            "loaded = sorted(m for m in sys.modules if m.startswith(('distgan.train', 'accelerate', 'deepspeed')))\n"
            "codes = codec.encode(torch.zeros(1, 1, 100), n_quantizers=3)\n"
            "audio = codec.decode(codes, length=100)\n"
            "print(isinstance(codec, torch.nn.Module), codec.training, loaded, codec.sample_rate, codec.hop_length,\n"
            "      codec.n_codebooks, codec.codebook_size, codec.bitrate(), tuple(codes.shape), tuple(audio.shape))\n")
    outputs = []
    for source in (codec_run, export):
        done = subprocess.run([sys.executable, "-c", code, str(source)], cwd=REPO_ROOT, env=subprocess_env(),
                              capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr
        outputs.append(done.stdout.split("\n")[0])
    assert outputs[0] == outputs[1] == f"True False [] {RATE} {HOP} 4 64 16537.5 (1, 3, 4) (1, 1, 100)"
    wave = torch.randn(1, 1, 1000, generator=torch.Generator().manual_seed(0)) * 0.1
    assert torch.equal(load_codec(codec_run).encode(wave), load_codec(export).encode(wave))
