"""The built-in synthetic corpus: speech-like utterances written like any prepared corpus.

It lets ``distgan train`` and the tests run with no data at hand. Utterance ``i`` belongs to
speaker ``i % speakers`` (ids ``synth-spk0``, ``synth-spk1``, ...), lasts 1-4 s and is drawn from
a generator seeded by ``(seed, speaker, i)``, so a clip does not depend on how many others there
are or which process made it. The clips go through ``distgan.data.prepare.writer.write_corpus`` like
real files: same checks, normalisation, validation split, shards and ``index.json``.

``ensure_synthetic_corpus`` keeps one copy per parameter set in a cache folder and is safe to
call from many processes at once: each writes into its own temporary folder and renames it into
place; a loser of the race discards its copy. A folder at the final name is always complete.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from distgan.data.index import INDEX_NAME, CorpusIndex
from distgan.data.prepare.options import PrepareOptions
from distgan.data.prepare.writer import write_corpus
from distgan.data.synthetic.speech import speaker_voice, synthesize_utterance

DEFAULT_SAMPLE_RATE = 22050
MIN_SECONDS, MAX_SECONDS = 1.0, 4.0
# Part of the cache folder's name: bump it when the synthesis changes, so that stale caches
# are not reused.
SYNTHESIS_VERSION = 2  # 2: PCM-16 wav members instead of FLAC


@dataclass(frozen=True)
class SyntheticUtterance:
    """One utterance to synthesize; satisfies ``distgan.data.clips.ClipJob`` (picklable, cheap)."""

    key: str
    speaker_index: int
    utterance_index: int
    speakers: int
    seed: int
    sample_rate: int

    @property
    def speaker(self) -> str:
        return f"synth-spk{self.speaker_index}"

    @property
    def path(self) -> str:
        return f"synthetic:{self.key}"

    source = "synthetic"
    text = None
    text_raw = None

    def load(self) -> tuple[np.ndarray, int]:
        rng = np.random.default_rng([self.seed, self.speaker_index, self.utterance_index])
        seconds = rng.uniform(MIN_SECONDS, MAX_SECONDS)
        voice = speaker_voice(self.speaker_index, self.speakers, self.seed)
        audio = synthesize_utterance(voice, seconds, self.sample_rate, rng)
        return audio[:, None], self.sample_rate


def synthetic_jobs(options: PrepareOptions) -> list[SyntheticUtterance]:
    """The corpus's utterances in key order (``options.sample_rate`` must be set)."""
    assert options.sample_rate is not None
    jobs = [
        SyntheticUtterance(f"synth-spk{i % options.speakers}-{i:05d}", i % options.speakers, i,
                           options.speakers, options.seed, options.sample_rate)
        for i in range(options.utterances)
    ]
    return sorted(jobs, key=lambda job: job.key)


def write_synthetic(out: Path, options: PrepareOptions) -> CorpusIndex:
    """``distgan prepare --synthetic OUT``: every option applies; the rate defaults to 22050 Hz."""
    options = options.resolved(options.sample_rate or DEFAULT_SAMPLE_RATE)
    return write_corpus(Path(out), synthetic_jobs(options), options, source="synthetic")


def synthesize_corpus(out_dir: str | Path, *, sample_rate: int = DEFAULT_SAMPLE_RATE, speakers: int = 4,
                      utterances: int = 48, seed: int = 0, val_count: int = 4,
                      audio_format: str = "wav") -> Path:
    """Write the synthetic corpus (shards + ``index.json``) into ``out_dir`` and return it."""
    options = PrepareOptions(sample_rate=sample_rate, speakers=speakers, utterances=utterances, seed=seed,
                             val_count=val_count, audio_format=audio_format, progress=False)  # type: ignore[arg-type]
    options.check()
    write_synthetic(Path(out_dir), options)
    return Path(out_dir)


def default_cache_dir() -> Path:
    """``$DISTGAN_CACHE``, else ``$XDG_CACHE_HOME/distgan``, else ``~/.cache/distgan``."""
    if os.environ.get("DISTGAN_CACHE"):
        return Path(os.environ["DISTGAN_CACHE"])
    if os.environ.get("XDG_CACHE_HOME"):
        return Path(os.environ["XDG_CACHE_HOME"]) / "distgan"
    return Path.home() / ".cache" / "distgan"


def cache_name(*, sample_rate: int, speakers: int, utterances: int, seed: int) -> str:
    return f"synthetic-v{SYNTHESIS_VERSION}-{sample_rate}hz-{speakers}spk-{utterances}utt-seed{seed}"


def ensure_synthetic_corpus(*, sample_rate: int, speakers: int, utterances: int, seed: int,
                            cache_dir: str | Path | None = None) -> Path:
    """The cached corpus folder for these parameters, written first if it is not there yet.

    Concurrency-safe (see the module docstring); never returns a half-written folder.
    """
    cache = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    target = cache / cache_name(sample_rate=sample_rate, speakers=speakers, utterances=utterances, seed=seed)
    if (target / INDEX_NAME).is_file():
        return target
    cache.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".tmp", dir=cache))
    try:
        synthesize_corpus(scratch, sample_rate=sample_rate, speakers=speakers, utterances=utterances,
                          seed=seed)
        scratch.chmod(0o755)  # mkdtemp's 0o700 would hide a shared cache from other users
        os.rename(scratch, target)
    except OSError:
        # Another process renamed its copy into place first (rename onto a non-empty folder fails).
        if not (target / INDEX_NAME).is_file():
            raise
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return target

