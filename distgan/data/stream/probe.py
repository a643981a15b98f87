"""A first look at the training shards, before any process group or run directory exists.

The DataLoader workers drop every bad clip and count it; a corpus in which no clip is usable
would be found out only deep inside a worker, after the run directory was made, as a
traceback. A look at the first ``PROBE_CLIPS`` clips (for at most ``PROBE_SECONDS``), with the
stream's own decoding, costs milliseconds and names the cause and its fix in one line:

- the shards hold no sample at all (an empty ``.tar``, an index whose counts are all 0);
- the clips' own headers all have another sample rate than ``audio.sample_rate`` (also when
  ``index.json`` and the samples' json claim the right one);
- every clip is unusable for the stream (shorter than a segment, silent, without audio, ...):
  said when the probe saw every clip of the corpus, since a larger corpus may hold good clips
  further on (the stream then raises ``NoUsableAudio`` itself, once it has searched them all).
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field

import numpy as np

from distgan.data.audiofile import AudioFileError, open_audio
from distgan.data.reading import ShardReadError
from distgan.data.shards import ShardSet
from distgan.data.stream.decode import decode_segment, find_audio, read_meta
from distgan.data.stream.skips import BadSample, NoUsableAudio

PROBE_CLIPS = 64
PROBE_SECONDS = 3.0


@dataclass
class Probe:
    """What the first clips of a shard set showed."""

    clips: int = 0
    usable: int = 0
    complete: bool = True  # every clip of every shard was looked at
    reasons: Counter = field(default_factory=Counter)  # skip reason -> clips
    rates: Counter = field(default_factory=Counter)  # header sample rate -> clips
    longest: int = 0  # frames of the longest clip seen
    first_bad: str = ""  # "SHARD: sample KEY: DETAIL" of the first unusable clip


def _look(probe: Probe, url: str, key: str, members: dict[str, bytes], *, sample_rate: int,
          segment_samples: int, pad_short: bool, silence_peak: float) -> None:
    probe.clips += 1
    try:
        audio = find_audio(members)
        try:
            reader = open_audio(audio)
            probe.rates[reader.samplerate] += 1
            probe.longest = max(probe.longest, reader.frames)
            reader.close()
        except AudioFileError:
            pass  # decode_segment names it
        decode_segment(audio, read_meta(members), sample_rate=sample_rate, segment_samples=segment_samples,
                       pad_short=pad_short, silence_peak=silence_peak, rng=np.random.default_rng(0))
        probe.usable += 1
    except BadSample as bad:
        probe.reasons[bad.reason] += 1
        probe.first_bad = probe.first_bad or f"{url}: sample {key}: {bad}"


def probe_shards(shards: ShardSet, *, sample_rate: int, segment_samples: int, pad_short: bool,
                 silence_peak: float, clips: int = PROBE_CLIPS, seconds: float = PROBE_SECONDS) -> Probe:
    """Decode up to ``clips`` clips of the set's first shards as the stream would, for at most
    about ``seconds`` (clips without a ``peak`` in their json are decoded whole: long ones cost)."""
    probe, deadline = Probe(), time.monotonic() + seconds
    for number, shard in enumerate(shards.shards):
        if probe.clips >= clips or time.monotonic() > deadline:
            probe.complete = number == len(shards.shards)
            break
        try:
            for sample in shard.read(0, None):
                if probe.clips >= clips or time.monotonic() > deadline:
                    probe.complete = False
                    break
                _look(probe, shard.url, sample.key, sample.members, sample_rate=sample_rate,
                      segment_samples=segment_samples, pad_short=pad_short, silence_peak=silence_peak)
        except ShardReadError:
            probe.reasons["shard_error"] += 1
    return probe


def first_rates(shards: ShardSet, clips: int = 8) -> list[tuple[str, str, int]]:
    """``(shard, key, sample rate)`` of up to ``clips`` readable clips of the set's first shards."""
    found: list[tuple[str, str, int]] = []
    for shard in shards.shards:
        try:
            for sample in shard.read(0, clips - len(found)):
                try:
                    reader = open_audio(find_audio(sample.members))
                except (BadSample, AudioFileError):
                    continue  # a bad clip is the stream's business, not a verdict on the corpus
                found.append((shard.url, sample.key, reader.samplerate))
                reader.close()
        except ShardReadError:
            continue
        if len(found) >= clips:
            break
    return found


def check_sample_rate(shards: ShardSet, sample_rate: int, clips: int = 8) -> None:
    """Raise ``ValueError`` when the first readable clips all have another sample rate."""
    rates = first_rates(shards, clips)
    if rates and all(rate != sample_rate for _, _, rate in rates):
        url, key, rate = rates[0]
        seen = "/".join(str(r) for r in sorted({r for _, _, r in rates}))
        fix = f"set audio.sample_rate={rate}, or resample the corpus (distgan prepare --sample-rate)"
        if shards.sample_rate is not None:  # the index (and json) claim a rate the audio does not have
            fix = (f"{shards.index_path} says {shards.sample_rate} Hz: the shards disagree with their own "
                   f"index; write them again (distgan prepare --sample-rate {sample_rate})")
        raise ValueError(
            f"{url}: sample {key} is {rate} Hz audio, and the first {len(rates)} readable clips are all "
            f"{seen} Hz, but audio.sample_rate is {sample_rate}: {fix}")


_FIXES = {
    "silent": "every clip is silent (peak below {silence_peak:g}): the corpus holds no sound; check how it was made",
    "no_audio": "no sample holds an audio member (KEY.flac, KEY.wav, ...) ({first_bad})",
    "decode_error": "no clip decodes as audio ({first_bad})",
    "empty": "every clip has zero frames ({first_bad})",
    "non_finite": "every clip holds NaN or Inf ({first_bad})",
    "metadata_mismatch": "every sample's json describes other audio than its audio member ({first_bad}): "
                         "rewrite the json, or the shards with distgan prepare",
}


def check_usable(shards: ShardSet, *, sample_rate: int, segment_samples: int, pad_short: bool,
                 silence_peak: float, where: str = "data.shards") -> None:
    """Raise ``NoUsableAudio`` (one line) when the shards can be seen to hold no usable clip."""
    if shards.samples == 0:
        recorded = f" (its index {shards.index_path} records 0 samples)" if shards.index_path else ""
        raise NoUsableAudio(f"{where}: the {len(shards)} shard(s){recorded} hold no samples; point {where} at "
                            "the corpus, or re-write its index (distgan prepare, distgan index)")
    check_sample_rate(shards, sample_rate)  # the headers' rate, whatever the index and json claim
    probe = probe_shards(shards, sample_rate=sample_rate, segment_samples=segment_samples, pad_short=pad_short,
                         silence_peak=silence_peak)
    if probe.usable or not probe.complete:
        return
    if probe.clips == 0:
        raise NoUsableAudio(f"{where}: the {len(shards)} shard(s) hold no samples (empty or unreadable .tar "
                            "files); point it at the corpus, or write the shards again")
    (reason, _), = probe.reasons.most_common(1)
    if len(probe.reasons) == 1 and reason == "too_short":
        cause = (f"every clip is shorter than data.segment_samples={segment_samples} (the longest has "
                 f"{probe.longest} samples): set data.segment_samples to at most {probe.longest}, or "
                 "data.short_clips=pad")
    elif len(probe.reasons) == 1 and reason in _FIXES:
        cause = _FIXES[reason].format(silence_peak=silence_peak, first_bad=probe.first_bad)
    else:
        counts = ", ".join(f"{name}: {n}" for name, n in probe.reasons.most_common())
        cause = f"every clip is unusable ({counts}; first: {probe.first_bad})"
    raise NoUsableAudio(f"{where}: no usable clip in the {probe.clips} clips of {len(shards)} shard(s): {cause}")
