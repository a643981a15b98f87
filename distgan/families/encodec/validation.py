"""EnCodec's validation: DAC's codec validator (``distgan.families.dac.validation``) at every
target bandwidth, with the codec in eval mode.

The scores are the same (mel distance, SI-SDR, bitrate and per-codebook usage, at all codebooks
and at each lower target bandwidth's count: ``val/mel_l1@{k}q``, ``val/kbps@{k}q``...). What differs:

- the counts come from ``target_bandwidths`` (``EncodecConfig.bandwidth_codebooks``), not from a
  list of counts;
- G runs in eval mode while it validates, then goes back to training mode: in training mode the
  EMA codebooks learn from every batch they see, and validation clips must not move them (nor
  replace dead codes with them).
"""

from __future__ import annotations

import torch

from distgan.families.dac.validation import CodecValidator
from distgan.train.engine import ModelEngine


class EncodecValidator(CodecValidator):
    def counts(self) -> tuple[int, list[int]]:
        counts = self.cfg.model.generator.bandwidth_codebooks(self.cfg.audio.sample_rate)
        return max(counts), sorted(set(counts) - {max(counts)})

    @torch.no_grad()
    def generate(self, generator: ModelEngine) -> list[torch.Tensor]:
        training = generator.model.training
        generator.model.train(False)
        try:
            return super().generate(generator)
        finally:
            generator.model.train(training)
