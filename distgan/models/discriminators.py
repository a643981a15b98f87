"""HiFi-GAN's discriminators, multi-period (MPD) and multi-scale (MSD), and ``Discriminators``, the
configured set of sets (MPD, MSD, BigVGAN's MRD and CQT-D, EnCodec's MS-STFTD) that trains as one model.

Each sub-discriminator maps a waveform ``[B, 1, T]`` to ``(logits [B, N], feature maps)``; the
feature maps (every activation, then the logits before flattening) feed the feature-matching loss.
Each set of them (MPD, MSD here; BigVGAN's MRD and CQT discriminator in ``distgan.models.mrd`` and
``distgan.models.cqt``, EnCodec's multi-scale STFT discriminator in ``distgan.models.msstft``)
maps ``[B, 1, T]`` or ``[B, T]`` to ``(list of logits, list of feature-map lists)``, one entry per
sub-discriminator, which is what ``distgan.losses.gan`` takes.

Unlike HiFi-GAN's code, which takes ``(real, fake)`` pairs, every module here sees one batch of
waveforms at a time: the trainer calls it on real and fake audio separately or on their
concatenation. Nothing mixes samples of a batch (no batch norm), so both give the same numbers
but for spectral norm, whose power iteration advances by one step per forward pass in training
mode: two calls in training mode see very slightly different weights than one call does.
distgan's step makes one concatenated call on purpose (``distgan.train.step``, ``_discriminate``).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm, weight_norm

from distgan.config import DiscriminatorConfig
from distgan.models.cqt import MultiScaleSubbandCQTDiscriminator
from distgan.models.layers import LRELU_SLOPE, Output, SetOutput, conv_stack, mono_batch
from distgan.models.mrd import MultiResolutionDiscriminator
from distgan.models.msstft import MultiScaleSTFTDiscriminator

__all__ = ["LRELU_SLOPE", "Discriminators", "MultiPeriodDiscriminator", "MultiScaleDiscriminator", "Output",
           "PeriodDiscriminator", "ScaleDiscriminator", "SetOutput", "conv_stack", "discriminator_set", "mono_batch"]

# (kernel, stride, groups, padding) of MSD's seven convolutions (MelGAN's layout, as in HiFi-GAN).
MSD_LAYERS: tuple[tuple[int, int, int, int], ...] = (
    (15, 1, 1, 7),
    (41, 2, 4, 20),
    (41, 2, 16, 20),
    (41, 4, 16, 20),
    (41, 4, 16, 20),
    (41, 1, 16, 20),
    (5, 1, 1, 2),
)


class PeriodDiscriminator(nn.Module):
    """Looks at every ``period``-th sample: ``[B, 1, T] -> (logits [B, N], feature maps)``.

    The waveform is reflect-padded to a multiple of ``period`` and folded into
    ``[B, 1, T / period, period]``; 2-D convolutions with ``(k, 1)`` kernels then process each of the
    ``period`` phases as its own 1-D signal with shared weights. ``channels`` are the outputs of the
    ``(5, 1)`` convolutions, all with stride 3 but the last; a ``(3, 1)`` convolution gives the logits.
    With HiFi-GAN's five channel widths (four stride-3 layers), ``N = ceil(ceil(T / p) / 81) * p``
    (e.g. 102 for ``T = 8192, p = 2``). ``always_pad``: pad a whole period also when ``T`` is a
    multiple of it, as DAC's MPD does (HiFi-GAN's pads only to the next multiple).
    """

    def __init__(self, period: int, channels: list[int], use_spectral_norm: bool = False,
                 always_pad: bool = False) -> None:
        super().__init__()
        self.period, self.always_pad = period, always_pad
        norm = spectral_norm if use_spectral_norm else weight_norm
        ins = [1, *channels[:-1]]
        strides = [3] * (len(channels) - 1) + [1]
        self.convs = nn.ModuleList(
            norm(nn.Conv2d(c_in, c_out, (5, 1), (stride, 1), padding=(2, 0)))
            for c_in, c_out, stride in zip(ins, channels, strides, strict=True)
        )
        self.conv_post = norm(nn.Conv2d(channels[-1], 1, (3, 1), padding=(1, 0)))

    def forward(self, wave: torch.Tensor) -> Output:
        batch, _, length = wave.shape
        if length % self.period or self.always_pad:
            wave = F.pad(wave, (0, self.period - length % self.period), mode="reflect")
        return conv_stack(self.convs, self.conv_post, wave.view(batch, 1, -1, self.period))


class ScaleDiscriminator(nn.Module):
    """MelGAN's strided, grouped Conv1d stack on one time scale: ``[B, 1, T] -> (logits [B, N], features)``.

    ``channels`` are the outputs of the seven convolutions of ``MSD_LAYERS``; a 3-tap convolution gives
    the logits. Total stride 64: ``N = ceil(T / 64)`` for ``T`` a multiple of 64 or not.
    """

    def __init__(self, channels: list[int], use_spectral_norm: bool = False) -> None:
        super().__init__()
        if len(channels) != len(MSD_LAYERS):
            raise ValueError(f"ScaleDiscriminator needs {len(MSD_LAYERS)} channel widths, got {len(channels)}")
        norm = spectral_norm if use_spectral_norm else weight_norm
        ins = [1, *channels[:-1]]
        self.convs = nn.ModuleList(
            norm(nn.Conv1d(c_in, c_out, kernel, stride, groups=groups, padding=padding))
            for c_in, c_out, (kernel, stride, groups, padding) in zip(ins, channels, MSD_LAYERS, strict=True)
        )
        self.conv_post = norm(nn.Conv1d(channels[-1], 1, 3, padding=1))

    def forward(self, wave: torch.Tensor) -> Output:
        return conv_stack(self.convs, self.conv_post, wave)


class MultiPeriodDiscriminator(nn.Module):
    """One ``PeriodDiscriminator`` per period (HiFi-GAN: 2, 3, 5, 7, 11, primes so that few overlap).

    ``[B, 1, T]`` (or ``[B, T]``) ``-> (list of logits, list of feature-map lists)``, one entry per
    period. BigVGAN's MPD is this one: its ``discriminator_channel_mult`` scales ``channels`` and its
    ``use_spectral_norm`` (False in every official recipe) swaps weight norm for spectral norm.
    """

    def __init__(self, periods: list[int], channels: list[int], use_spectral_norm: bool = False) -> None:
        super().__init__()
        self.discriminators = nn.ModuleList(PeriodDiscriminator(p, channels, use_spectral_norm) for p in periods)

    def forward(self, wave: torch.Tensor) -> SetOutput:
        wave = mono_batch(wave)
        outputs = [d(wave) for d in self.discriminators]
        return [logits for logits, _ in outputs], [features for _, features in outputs]


class MultiScaleDiscriminator(nn.Module):
    """``scales`` ``ScaleDiscriminator``s on the raw waveform, then x2 and x4 average-pooled ones.

    The raw scale uses spectral norm (HiFi-GAN's choice, for stability), the others weight norm.
    ``[B, 1, T] -> (list of logits, list of feature-map lists)``, one entry per scale.
    """

    def __init__(self, scales: int, channels: list[int]) -> None:
        super().__init__()
        self.discriminators = nn.ModuleList(
            ScaleDiscriminator(channels, use_spectral_norm=i == 0) for i in range(scales)
        )
        self.pool = nn.AvgPool1d(4, 2, padding=2)

    def forward(self, wave: torch.Tensor) -> SetOutput:
        logits, features = [], []
        x = mono_batch(wave)
        for i, d in enumerate(self.discriminators):
            if i > 0:
                x = self.pool(x)
            scale_logits, scale_features = d(x)
            logits.append(scale_logits)
            features.append(scale_features)
        return logits, features


def discriminator_set(kind: str, cfg: DiscriminatorConfig, sample_rate: int | None) -> nn.Module:
    """One set of ``cfg.kinds`` built from its fields (``sample_rate``: the audio's, for CQT-D)."""
    if kind == "mpd":
        return MultiPeriodDiscriminator(cfg.periods, cfg.mpd_channels, cfg.mpd_use_spectral_norm)
    if kind == "msd":
        return MultiScaleDiscriminator(cfg.msd_scales, cfg.msd_channels)
    if kind == "mrd":
        return MultiResolutionDiscriminator(cfg.mrd_resolutions, cfg.mrd_channels, cfg.mrd_use_spectral_norm)
    if kind == "cqtd":
        if sample_rate is None:
            raise ValueError("the CQT discriminator needs the audio's sample rate")
        return MultiScaleSubbandCQTDiscriminator(
            sample_rate, cfg.cqtd_hop_lengths, cfg.cqtd_n_octaves, cfg.cqtd_bins_per_octaves, cfg.cqtd_filters,
            cfg.cqtd_max_filters, cfg.cqtd_filters_scale, cfg.cqtd_dilations, cfg.cqtd_normalize_volume)
    if kind == "msstftd":
        return MultiScaleSTFTDiscriminator(cfg.msstftd_filters, cfg.msstftd_n_ffts, cfg.msstftd_hop_lengths,
                                           cfg.msstftd_win_lengths, cfg.msstftd_max_filters, cfg.msstftd_filters_scale,
                                           cfg.msstftd_dilations, cfg.msstftd_normalized)
    raise ValueError(f"unknown discriminator set {kind!r}")


class Discriminators(nn.Module):
    """The sets of ``cfg.kinds`` as one module: ``[B, 1, T] -> (logits, feature maps)`` of every
    sub-discriminator, set by set in the order of ``kinds``.

    Each set is the attribute named by its kind (``mpd``, ``msd``, ``mrd``, ``cqtd``, ``msstftd``), so HiFi-GAN
    checkpoints (MPD + MSD, written before ``kinds`` existed) load unchanged. With HiFi-GAN's
    channels MPD + MSD are about 70.7M parameters (MPD 41.1M, MSD 29.6M). ``sample_rate`` is needed
    only for CQT-D.
    """

    def __init__(self, cfg: DiscriminatorConfig, sample_rate: int | None = None) -> None:
        super().__init__()
        self.kinds = list(cfg.kinds)
        for kind in self.kinds:
            self.add_module(kind, discriminator_set(kind, cfg, sample_rate))

    def forward(self, wave: torch.Tensor) -> SetOutput:
        wave = mono_batch(wave)
        logits: list[torch.Tensor] = []
        features: list[list[torch.Tensor]] = []
        for kind in self.kinds:
            set_logits, set_features = getattr(self, kind)(wave)
            logits += set_logits
            features += set_features
        return logits, features
