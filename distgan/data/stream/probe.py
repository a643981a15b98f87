"""A first look at shards without an index: do their clips have the configured sample rate?

An index records the corpus's sample rate, and training compares it with ``audio.sample_rate``
before it starts. Shards written by other tools have no index; without this look, a corpus at
another rate would be found out by the DataLoader workers, which skip every clip as
``wrong_sample_rate`` until none is left. Reading the headers of a few clips of the first
shards costs milliseconds and names the problem, the shard and the clip.
"""

from __future__ import annotations

from distgan.data.audiofile import AudioFileError, open_audio
from distgan.data.reading import ShardReadError
from distgan.data.shards import ShardSet
from distgan.data.stream.decode import find_audio
from distgan.data.stream.skips import BadSample


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
        raise ValueError(
            f"{url}: sample {key} is {rate} Hz audio, and the first {len(rates)} readable clips are all "
            f"{seen} Hz, but audio.sample_rate is {sample_rate}: set audio.sample_rate={rate}, or resample "
            "the corpus")
