"""Vocos's generator: mel features -> ConvNeXt backbone -> ISTFT head (vocos 0.1.0's modules).

Shapes: waveform ``[B, T]`` -> features ``[B, n_mels, F]`` -> backbone ``[B, F, dim]`` -> head
``[B, T']``. With ``center`` padding ``F = T // hop + 1`` and ``T' = (F - 1) * hop``; with
``same`` padding ``F = T // hop`` (the waveform is reflect-padded by ``(n_fft - hop) / 2`` each
side, uncentred STFT) and ``T' = F * hop``. Either way a segment of a multiple of ``hop`` samples
comes back at its own length.

Parameter and buffer names are the reference's (``backbone.*``, ``head.*``), so a release's
``pytorch_model.bin`` loads as it is; its ``feature_extractor.*`` buffers (the mel filterbank and
window) are constants distgan keeps in the front end, not in the generator.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
import torchaudio
from torch import nn

SAFE_LOG_FLOOR = 1e-7  # vocos.modules.safe_log's clamp


def safe_log(x: torch.Tensor, floor: float = SAFE_LOG_FLOOR) -> torch.Tensor:
    return torch.log(torch.clamp(x, min=floor))


class VocosMelFeatures(nn.Module):
    """Waveform ``[B, T]`` (or ``[B, 1, T]``) -> ``safe_log`` of the magnitude (power 1) mel
    spectrogram, HTK mel scale without normalisation (torchaudio's defaults, as vocos'
    ``MelSpectrogramFeatures``), computed in fp32."""

    def __init__(self, sample_rate: int, n_fft: int, hop_length: int, n_mels: int, padding: str = "center",
                 f_min: float = 0.0, f_max: float | None = None) -> None:
        super().__init__()
        self.padding = padding
        self.pad = (n_fft - hop_length) // 2 if padding == "same" else 0
        self.mel_spec = torchaudio.transforms.MelSpectrogram(
            sample_rate=sample_rate, n_fft=n_fft, hop_length=hop_length, n_mels=n_mels, center=padding == "center",
            power=1, f_min=f_min, f_max=f_max)

    def forward(self, wave: torch.Tensor) -> torch.Tensor:
        if wave.dim() == 3:
            wave = wave.squeeze(1)
        with torch.autocast(device_type=wave.device.type, enabled=False):
            wave = wave.float()
            if self.pad:
                wave = F.pad(wave, (self.pad, self.pad), mode="reflect")
            return safe_log(self.mel_spec(wave))


class ConvNeXtBlock(nn.Module):
    """``[B, dim, F]`` -> same: depthwise conv (7), LayerNorm, pointwise MLP with GELU, layer scale
    ``gamma``, residual."""

    def __init__(self, dim: int, intermediate_dim: int, layer_scale_init_value: float) -> None:
        super().__init__()
        self.dwconv = nn.Conv1d(dim, dim, kernel_size=7, padding=3, groups=dim)
        self.norm = nn.LayerNorm(dim, eps=1e-6)
        self.pwconv1 = nn.Linear(dim, intermediate_dim)
        self.act = nn.GELU()
        self.pwconv2 = nn.Linear(intermediate_dim, dim)
        self.gamma = nn.Parameter(torch.full((dim,), float(layer_scale_init_value))) \
            if layer_scale_init_value > 0 else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.pwconv2(self.act(self.pwconv1(self.norm(self.dwconv(x).transpose(1, 2)))))
        if self.gamma is not None:
            y = self.gamma * y
        return x + y.transpose(1, 2)


class VocosBackbone(nn.Module):
    """Features ``[B, C, F]`` -> ``[B, F, dim]``: conv (7) embedding, LayerNorm, ``num_layers``
    ConvNeXt blocks, final LayerNorm; convs and linears start truncated-normal (std 0.02), biases 0."""

    def __init__(self, input_channels: int, dim: int, intermediate_dim: int, num_layers: int,
                 layer_scale_init_value: float | None = None) -> None:
        super().__init__()
        self.embed = nn.Conv1d(input_channels, dim, kernel_size=7, padding=3)
        self.norm = nn.LayerNorm(dim, eps=1e-6)
        scale = layer_scale_init_value or 1 / num_layers
        self.convnext = nn.ModuleList(ConvNeXtBlock(dim, intermediate_dim, scale) for _ in range(num_layers))
        self.final_layer_norm = nn.LayerNorm(dim, eps=1e-6)
        for module in self.modules():
            if isinstance(module, (nn.Conv1d, nn.Linear)):
                nn.init.trunc_normal_(module.weight, std=0.02)
                nn.init.zeros_(module.bias)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        x = self.norm(self.embed(features).transpose(1, 2)).transpose(1, 2)
        for block in self.convnext:
            x = block(x)
        return self.final_layer_norm(x.transpose(1, 2))


class ISTFT(nn.Module):
    """Complex spectrogram ``[B, n_fft / 2 + 1, F]`` -> waveform ``[B, T']`` with a Hann window:
    ``torch.istft`` for ``center``; for ``same`` an inverse FFT, overlap-add and division by the
    squared-window envelope, trimmed by ``(n_fft - hop) / 2`` each side (``torch.istft`` refuses
    that padding: its NOLA check fails at the untrimmed edges)."""

    def __init__(self, n_fft: int, hop_length: int, padding: str = "same") -> None:
        super().__init__()
        if padding not in ("center", "same"):
            raise ValueError(f"padding must be 'center' or 'same', got {padding!r}")
        self.n_fft, self.hop_length, self.padding = n_fft, hop_length, padding
        self.register_buffer("window", torch.hann_window(n_fft))

    def forward(self, spec: torch.Tensor) -> torch.Tensor:
        if self.padding == "center":
            return torch.istft(spec, self.n_fft, self.hop_length, self.n_fft, self.window, center=True)
        pad, frames = (self.n_fft - self.hop_length) // 2, spec.shape[-1]
        frames_time = torch.fft.irfft(spec, self.n_fft, dim=1, norm="backward") * self.window[None, :, None]
        length = (frames - 1) * self.hop_length + self.n_fft
        fold = dict(output_size=(1, length), kernel_size=(1, self.n_fft), stride=(1, self.hop_length))
        wave = F.fold(frames_time, **fold)[:, 0, 0, pad:-pad]
        squared = self.window.square().expand(1, frames, -1).transpose(1, 2)
        envelope = F.fold(squared, **fold).squeeze()[pad:-pad]
        return wave / envelope


class ISTFTHead(nn.Module):
    """Backbone output ``[B, F, dim]`` -> waveform ``[B, T']``: a linear layer to ``n_fft + 2``
    values per frame, halves read as log-magnitude (exp, clipped at 100) and phase."""

    def __init__(self, dim: int, n_fft: int, hop_length: int, padding: str = "same") -> None:
        super().__init__()
        self.out = nn.Linear(dim, n_fft + 2)
        self.istft = ISTFT(n_fft, hop_length, padding)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        log_magnitude, phase = self.out(x).transpose(1, 2).chunk(2, dim=1)
        magnitude = torch.clip(torch.exp(log_magnitude), max=1e2)
        with torch.autocast(device_type=x.device.type, enabled=False):
            spec = torch.complex(magnitude.float() * torch.cos(phase.float()), magnitude.float() * torch.sin(phase.float()))
            return self.istft(spec)


class VocosGenerator(nn.Module):
    """Vocos's mel features ``[B, n_mels, F]`` -> waveform ``[B, 1, T']`` (backbone, then head)."""

    # A vocos.Vocos state dict (a release's pytorch_model.bin): the feature extractor's buffers are
    # constants of the front end (``VocosMelFeatures``), the rest loads under the same names.
    REFERENCE_RENAMES = ((r"^feature_extractor\.", None),)

    def __init__(self, n_mels: int, n_fft: int, hop_length: int, dim: int, intermediate_dim: int,
                 num_layers: int, layer_scale_init_value: float | None = None, padding: str = "center") -> None:
        super().__init__()
        self.backbone = VocosBackbone(n_mels, dim, intermediate_dim, num_layers, layer_scale_init_value)
        self.head = ISTFTHead(dim, n_fft, hop_length, padding)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.head(self.backbone(features)).unsqueeze(1)

    def remove_weight_norm(self) -> None:
        """Inference's hook: Vocos's generator has no weight norm to fold."""
