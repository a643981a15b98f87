"""distgan: distributed training of GAN vocoders.

``distgan.load_generator(path)`` is the entry point for using a trained vocoder, and
``distgan.load_codec(path)`` for a trained codec. They are looked up on first use (PEP 562), so
``import distgan`` and ``distgan --help`` stay free of torch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from distgan.inference.codec import load_codec
    from distgan.inference.load import load_generator

__version__ = "0.1.0"
__all__ = ["__version__", "load_codec", "load_generator"]


def __getattr__(name: str) -> Any:
    if name == "load_generator":
        from distgan.inference.load import load_generator

        return load_generator
    if name == "load_codec":
        from distgan.inference.codec import load_codec

        return load_codec
    raise AttributeError(f"module 'distgan' has no attribute {name!r}")
