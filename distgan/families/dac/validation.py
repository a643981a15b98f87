"""A codec's validation: each clip encoded and decoded at every codebook count it trains for.

On top of the vocoder validator's audio, mel images and ``val/mel_l1`` (all codebooks), rank 0
writes, averaged over the validation clips:

- ``val/si_sdr``: scale-invariant signal-to-distortion ratio in dB (higher is better; zero-mean,
  as audiotools' ``SISDRLoss``, which DAC logs negated);
- ``val/kbps``: the bitrate, codebooks x log2(codebook size) x frame rate;
- per reduced count ``k`` of ``model.generator.val_codebooks``: ``val/mel_l1@{k}q``,
  ``val/si_sdr@{k}q`` and ``val/kbps@{k}q`` (quantizer dropout trains the codec to decode them);
- per codebook ``i``, over every frame of the clips: ``val/codebook{i}/perplexity`` (``exp`` of the
  entropy of its code histogram: how many entries it uses, at most ``codebook_size``) and
  ``val/codebook{i}/dead`` (the share of its entries no frame picked). On a few short clips many
  entries go unpicked even in a healthy codec: compare the curve with itself over a run.

Every rank decodes (under ZeRO-3 G's forward is a collective); only rank 0 scores.
"""

from __future__ import annotations

import math

import torch

from distgan.inference.codec import bitrate
from distgan.train.engine import ModelEngine
from distgan.train.validation import Validator


def si_sdr(real: torch.Tensor, fake: torch.Tensor, eps: float = 1e-8) -> float:
    """SI-SDR (dB) of ``fake`` against ``real`` (1-D, the same length), both zero-meaned."""
    real, fake = real - real.mean(), fake - fake.mean()
    scale = ((fake * real).sum() + eps) / ((real * real).sum() + eps)
    target = scale * real
    return float(10 * torch.log10((target.square().sum()) / ((fake - target).square().sum()) + eps))


def codebook_usage(codes: torch.Tensor, codebook_size: int) -> tuple[float, float]:
    """Codes of one codebook (any shape) -> (perplexity, share of entries never picked)."""
    counts = torch.bincount(codes.reshape(-1), minlength=codebook_size).double()
    p = counts / counts.sum()
    entropy = -(p[p > 0] * p[p > 0].log()).sum()
    return float(entropy.exp()), float((counts == 0).double().mean())


class CodecValidator(Validator):
    def counts(self) -> tuple[int, list[int]]:
        """(the codec's codebooks, the reduced counts validation also decodes with): the section's
        ``n_codebooks`` and ``val_codebooks`` (a codec family whose section names them otherwise
        overrides this)."""
        g = self.cfg.model.generator
        return g.n_codebooks, list(dict.fromkeys(g.val_codebooks))

    @torch.no_grad()
    def generate(self, generator: ModelEngine) -> list[torch.Tensor]:
        """Decoded waveforms ``[T]`` with every codebook; the reduced counts' and the codes are kept."""
        self.reduced: dict[int, list[torch.Tensor]] = {k: [] for k in self.counts()[1]}
        self.codes: list[torch.Tensor] = []
        out = []
        for clip in self.clips:
            wave = clip["audio"].to(self.info.device).view(1, 1, -1)
            full = generator(wave)
            out.append(full.audio.float().reshape(-1).cpu())
            self.codes.append(full.codes[0].cpu())
            for k in self.reduced:
                self.reduced[k].append(generator(wave, torch.full((1,), k, device=wave.device)).audio.float().reshape(-1).cpu())
        return out

    def quality(self, fakes: list[torch.Tensor]) -> dict[str, float]:
        g = self.cfg.model.generator
        reals = [clip["audio"] for clip in self.clips]
        frame_rate = self.cfg.audio.sample_rate / g.hop_length()
        values = dict(super().quality(fakes))
        values["val/si_sdr"] = sum(map(si_sdr, reals, fakes)) / len(reals)
        values["val/kbps"] = bitrate(self.counts()[0], g.codebook_size, frame_rate) / 1000
        for k, decoded in self.reduced.items():
            values[f"val/mel_l1@{k}q"] = sum(map(self.mel_l1, reals, decoded)) / len(reals)
            values[f"val/si_sdr@{k}q"] = sum(map(si_sdr, reals, decoded)) / len(reals)
            values[f"val/kbps@{k}q"] = bitrate(k, g.codebook_size, frame_rate) / 1000
        codes = torch.cat(self.codes, dim=-1)  # [n_codebooks, all frames]
        for i in range(codes.shape[0]):
            perplexity, dead = codebook_usage(codes[i], g.codebook_size)
            values[f"val/codebook{i}/perplexity"] = perplexity
            values[f"val/codebook{i}/dead"] = dead
        return {key: value for key, value in values.items() if math.isfinite(value)}
