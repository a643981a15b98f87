"""Writing ``index.json`` for shards other tools wrote (``distgan index``).

Without an index, every training start counts the shards' samples from their tar headers
(``ShardSet.counted``, on rank 0): seconds for a hundred local shards, longer on a network file
system, and not at all for ``pipe:`` shards, which would have to stream through whole. Indexing
them once records, per shard, the sample count and every key (so ``data.val_fraction``'s
held-out split is known without opening a shard), and, unless told not to, the seconds of audio
and the corpus's sample rate, from each clip's audio header (all the shards are read once; no
audio is decoded). Training then checks ``audio.sample_rate`` against it before it starts.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from distgan.data.audiofile import AudioFileError, open_audio
from distgan.data.format import is_audio_extension
from distgan.data.index import CorpusIndex, ShardEntry, SplitEntry
from distgan.data.reading import ShardReadError, iter_shard, shard_keys
from distgan.data.shards import COUNT_THREADS, Shard


@dataclass
class ShardSummary:
    """What one pass over a shard found: keys in tar order, seconds, clips per sample rate."""

    url: str
    keys: list[str] = field(default_factory=list)
    seconds: float | None = None
    rates: Counter[int] = field(default_factory=Counter)
    formats: Counter[str] = field(default_factory=Counter)
    failed: list[dict[str, str]] = field(default_factory=list)


def summarize_shard(url: str, durations: bool = True) -> ShardSummary:
    """Keys (tar headers only), plus seconds and rates from each clip's audio header if ``durations``.

    A clip without readable audio is still a sample (training skips it) and is listed in
    ``failed``; an unreadable shard is listed there with the samples before the failure.
    """
    summary = ShardSummary(url, seconds=0.0 if durations else None)
    try:
        if not durations:
            summary.keys = shard_keys(url)
            return summary
        for sample in iter_shard(url):
            summary.keys.append(sample.key)
            _measure(sample.key, sample.members, summary)
    except ShardReadError as err:
        summary.failed.append({"input": url, "reason": str(err)})
    return summary


def _measure(key: str, members: dict[str, bytes], summary: ShardSummary) -> None:
    ext = next((ext for ext in members if is_audio_extension(ext)), None)
    if ext is None:
        summary.failed.append({"input": f"{summary.url}:{key}", "reason": f"no audio member ({', '.join(members)})"})
        return
    try:
        reader = open_audio(members[ext])
    except AudioFileError as err:
        summary.failed.append({"input": f"{summary.url}:{key}", "reason": f"unreadable {ext}: {err}"})
        return
    summary.seconds = (summary.seconds or 0.0) + reader.frames / reader.samplerate
    summary.rates[reader.samplerate] += 1
    summary.formats[ext.lower().rsplit(".", 1)[-1]] += 1
    reader.close()


def index_shards(shards: list[Shard], out: Path, *, split: str = "train", durations: bool = True,
                 source: str = "", threads: int = COUNT_THREADS,
                 progress: Callable[[ShardSummary], None] | None = None) -> CorpusIndex:
    """Read ``shards`` (``threads`` at a time) and build the index that ``out`` will hold."""
    with ThreadPoolExecutor(max(1, threads)) as pool:
        summaries = []
        for summary in pool.map(lambda shard: summarize_shard(shard.url, durations), shards):
            summaries.append(summary)
            if progress is not None:
                progress(summary)
    rates = sum((s.rates for s in summaries), Counter())
    formats = sum((s.formats for s in summaries), Counter())
    entries = [ShardEntry(_relative(s.url, out.parent), len(s.keys), s.seconds, s.keys) for s in summaries]
    return CorpusIndex(
        sample_rate=rates.most_common(1)[0][0] if rates else None,
        audio_format=formats.most_common(1)[0][0] if len(formats) == 1 else "mixed" if formats else "unknown",
        splits={split: SplitEntry(entries)},
        options={"written_by": "distgan index", "durations": durations,
                 "sample_rates": {str(rate): count for rate, count in sorted(rates.items())},
                 "audio_formats": dict(sorted(formats.items()))},
        source=source,
        failed=[failure for s in summaries for failure in s.failed],
    )


def _relative(url: str, folder: Path) -> str:
    """A local shard's path relative to the index's folder (as ``prepare`` writes them) when it
    lies below it, else absolute; ``pipe:`` URLs as they are."""
    if url.startswith("pipe:"):
        return url
    path = Path(url).resolve()
    try:
        return path.relative_to(folder.resolve()).as_posix()
    except ValueError:
        return os.fspath(path)
