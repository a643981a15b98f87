"""distgan: distributed training of GAN vocoders.

``distgan.load_generator(path)`` is the one entry point for using a trained model. It is looked up
on first use (PEP 562), so ``import distgan`` and ``distgan --help`` stay free of torch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from distgan.inference.load import load_generator

__version__ = "0.1.0"
__all__ = ["__version__", "load_generator"]


def __getattr__(name: str) -> Any:
    if name == "load_generator":
        from distgan.inference.load import load_generator

        return load_generator
    raise AttributeError(f"module 'distgan' has no attribute {name!r}")
