"""Scoring a vocoder: objective metrics (``metrics.py``) and copy-synthesis over a corpus (``evaluate.py``)."""
