"""The built-in synthetic corpus: speech-like audio that needs no download.

``speech.py`` synthesizes utterances (voiced and unvoiced segments with formants and pitch
contours per speaker); ``corpus.py`` writes them as a prepared corpus, once per cache folder.
"""

from distgan.data.synthetic.corpus import (
    default_cache_dir,
    ensure_synthetic_corpus,
    synthesize_corpus,
    write_synthetic,
)

__all__ = ["default_cache_dir", "ensure_synthetic_corpus", "synthesize_corpus", "write_synthetic"]
