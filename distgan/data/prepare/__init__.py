"""Corpus preparation: any corpus in, deterministic WebDataset shards and ``index.json`` out.

- ``pipeline.py``: ``prepare_corpus`` (discover, probe, convert, write) and its summary;
- ``sources.py``: reading a folder, an LJSpeech folder or a JSONL manifest;
- ``convert.py``: one clip to a sample's tar members (checks, mono, resampling, gain, encoding);
- ``writer.py``: shards, the validation split and ``index.json``;
- ``options.py``: ``PrepareOptions``, every choice recorded in the index.
"""

from distgan.data.prepare.options import PrepareOptions
from distgan.data.prepare.pipeline import PrepareError, prepare_corpus, summary

__all__ = ["PrepareError", "PrepareOptions", "prepare_corpus", "summary"]
