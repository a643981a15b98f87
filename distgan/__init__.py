"""distgan: distributed training of GAN vocoders."""

__version__ = "0.1.0"
