"""A corpus in, WebDataset shards and ``index.json`` out: what ``distgan prepare`` runs.

The source is a folder of audio files, an LJSpeech folder or a JSONL manifest (``sources.py``
says how each is read), or the built-in synthetic corpus. Clips are checked, mixed to mono,
resampled, normalised and encoded (``convert.py``), then written in key order into deterministic
shards (``writer.py``). Inputs that cannot be used (unreadable, empty, silent, NaN/Inf, missing)
are reported in the summary and in ``index.json``'s ``failed``.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from distgan.data.index import CorpusIndex
from distgan.data.prepare.convert import ClipError, Failure
from distgan.data.prepare.options import PrepareOptions
from distgan.data.prepare.sources import SourceFile, discover, probe
from distgan.data.prepare.writer import write_corpus

_FAILURES_SHOWN = 20


class PrepareError(ValueError):
    """Nothing can be prepared as asked (e.g. sources at several rates and no target rate)."""


def prepare_corpus(src: Path | None, out: Path, options: PrepareOptions) -> CorpusIndex:
    """Write shards and ``index.json`` for SRC (or the synthetic corpus when ``src`` is None).

    Returns the index, also when nothing was written (then with an empty ``splits`` and no
    ``index.json`` on disk). Raises ``PrepareError`` or ``FileNotFoundError`` on unusable input.
    """
    options.check()
    if src is None:
        # Imported here: the synthetic corpus is written through this package's writer.
        from distgan.data.synthetic.corpus import write_synthetic

        return write_synthetic(Path(out), options)
    src = Path(src)
    found = discover(src)
    usable: list[SourceFile] = []
    failed = list(found.failed)
    rates: Counter[int] = Counter()
    for item in found.files:
        try:
            header = probe(item)
        except ClipError as err:
            failed.append(Failure(item.path, str(err)))
            continue
        usable.append(item)
        rates[header.sample_rate] += 1
    sample_rate = options.sample_rate or _common_rate(rates)
    if not usable:
        return CorpusIndex(sample_rate=sample_rate, audio_format=options.audio_format, source=str(src),
                           options=options.to_json(),
                           failed=[f.to_json() for f in sorted(failed, key=lambda f: (f.path, f.reason))])
    return write_corpus(Path(out), usable, options.resolved(sample_rate), source=str(src), failed=failed)


def _common_rate(rates: Counter[int]) -> int:
    """The sources' sample rate when they agree (0 when there are none)."""
    if len(rates) > 1:
        found = ", ".join(f"{rate} Hz: {count} files" for rate, count in sorted(rates.items()))
        raise PrepareError(f"the sources have different sample rates ({found}); choose one with --sample-rate")
    return next(iter(rates), 0)


def summary(index: CorpusIndex, out: Path) -> str:
    """A few lines for the terminal: what each split holds, and which inputs failed and why."""
    lines = []
    if index.splits:
        lines.append(f"wrote {out}: {index.sample_rate} Hz {index.audio_format}")
    for name, split in index.splits.items():
        shards = len(split.shards)
        lines.append(f"  {name}: {split.samples} samples, {split.seconds:.1f} s in {shards} "
                     f"shard{'s' if shards != 1 else ''}")
    if index.failed:
        lines.append(f"  failed: {len(index.failed)} input{'s' if len(index.failed) != 1 else ''}")
        lines += [f"    {f['path']}: {f['reason']}" for f in index.failed[:_FAILURES_SHOWN]]
        if len(index.failed) > _FAILURES_SHOWN:
            lines.append(f"    ... {len(index.failed) - _FAILURES_SHOWN} more in index.json")
    if not index.splits:
        lines.append(f"nothing was written to {out}: no input could be used")
    return "\n".join(lines)
