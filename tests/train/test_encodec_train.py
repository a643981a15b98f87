"""configs/encodec_tiny.yaml learns in one process with either quantizer and validates at every target
bandwidth; the bandwidth draw is one per (seed, step, micro-batch), the same on every rank and
again after a resume; validation leaves the EMA codebooks where training put them; the frequency
loss is of order 1 and zero only for equal audio.

The launch modes (DDP, ZeRO-1/2/3, resume bit for bit, codebooks equal on both ranks) are
``tests/train/test_family_launch.py``'s row; the codebooks against one process on two ranks are
``tests/train/test_codebook_ranks.py``'s; the collectives a step adds, ``test_step_syncs_ranks.py``'s.
"""

from __future__ import annotations

import math
from collections import Counter
from pathlib import Path

import pytest
import torch

from distgan.config import load_config
from distgan.distributed import ProcessInfo
from distgan.families import build_models
from distgan.families.encodec.frequency import EncodecFrequencyLoss
from distgan.families.encodec.objective import EncodecObjective
from distgan.families.encodec.validation import EncodecValidator
from tests.train.helpers import REPO_ROOT, run_distgan, scalars, train_args

TINY = REPO_ROOT / "configs" / "encodec_tiny.yaml"
INFO = ProcessInfo(rank=0, world_size=1, local_rank=0, device=torch.device("cpu"), is_main=True)
SHORT = ("data.segment_samples=4096", "data.batch_size=2", "data.num_workers=0", "log.every_steps=1")


@pytest.mark.slow
def test_tiny_codec_learns_and_validates_at_every_bandwidth(tmp_path: Path) -> None:
    run_distgan(train_args(tmp_path, "train.max_steps=30", "log.val_every_steps=10", *SHORT, config=TINY))
    values = scalars(tmp_path)

    def mean(tag: str, steps: range) -> float:
        return sum(values[tag][step] for step in steps) / len(steps)

    assert mean("g/mel", range(26, 31)) < 0.9 * mean("g/mel", range(1, 6))
    assert mean("g/time", range(26, 31)) < mean("g/time", range(1, 6))
    for term in ("g/commitment", "g/adv", "g/fm", "d/total"):
        assert all(math.isfinite(v) for v in values[term].values()), term
    # 4 codebooks of 64 entries at 16 kHz / hop 32: 6 bits x 500 frames/s = 3 kbps each.
    assert values["val/kbps"][30] == pytest.approx(12.0)
    assert values["val/kbps@1q"][30] == pytest.approx(3.0) and values["val/kbps@2q"][30] == pytest.approx(6.0)
    assert values["val/mel_l1"][30] < values["val/mel_l1"][10]
    for i in range(4):
        assert 1.0 <= values[f"val/codebook{i}/perplexity"][30] <= 64.0


@pytest.mark.slow
def test_the_factorized_quantizer_trains_in_the_same_family(tmp_path: Path) -> None:
    run_distgan(train_args(tmp_path, "train.max_steps=3", "model.generator.quantizer=factorized", *SHORT, config=TINY))
    values = scalars(tmp_path)
    assert all(math.isfinite(values["g/total"][step]) for step in (1, 2, 3))
    assert values["g/commitment"][3] > 0


def objective(seed: int = 1234) -> EncodecObjective:
    cfg = load_config(TINY, [f"train.seed={seed}"])
    return EncodecObjective(cfg, None, None, INFO)


def test_one_bandwidth_per_step_the_same_on_every_rank_and_after_a_resume() -> None:
    wave, run, resumed, reseeded = torch.zeros(2, 4096), objective(), objective(), objective(seed=7)

    def draws(chosen: EncodecObjective, rank: int = 0) -> list[int]:
        return [int(chosen.generator_input(wave, step, rank, 0)[1]) for step in range(300)]

    first = draws(run)
    assert first == draws(run, rank=1)  # the rank is no part of the draw
    assert first == draws(resumed)  # a resumed run's objective is built anew
    assert first != draws(reseeded)
    counts = Counter(first)
    assert sorted(counts) == [1, 2, 4] and min(counts.values()) > 70  # uniform over the three bandwidths
    micro = [int(run.generator_input(wave, 5, 0, k)[1]) for k in range(30)]
    assert len(set(micro)) > 1  # micro-batches of one step draw apart


def test_validation_leaves_the_ema_codebooks_and_training_mode() -> None:
    cfg = load_config(TINY, ["log.val_clips=1", *SHORT])
    generator, _ = build_models(cfg)
    generator.train()
    generator(0.1 * torch.randn(2, 1, 4096))  # k-means start: the codebooks hold data now
    before = {k: v.clone() for k, v in generator.state_dict().items() if "_codebook" in k}
    validator = EncodecValidator(cfg, INFO, [{"audio": 0.1 * torch.randn(4096), "key": "clip"}], None, None)
    assert validator.counts() == (4, [1, 2])

    class Engine:  # what the validator uses of a ModelEngine
        model = generator
        __call__ = staticmethod(generator)

    fakes = validator.generate(Engine())
    assert len(fakes) == 1 and sorted(validator.reduced) == [1, 2]
    assert generator.training
    assert all(torch.equal(v, before[k]) for k, v in generator.state_dict().items() if "_codebook" in k)


def test_the_frequency_loss_is_of_order_one_and_zero_only_for_equal_audio() -> None:
    loss = EncodecFrequencyLoss(16000, [64, 128, 256, 512])
    torch.manual_seed(0)
    t = torch.arange(8192) / 16000
    speechy = (0.3 * torch.sin(2 * math.pi * 220 * t) * torch.sin(2 * math.pi * 3 * t)).reshape(1, 1, -1)
    assert float(loss(speechy, speechy)) == 0.0
    noise = (0.05 * torch.randn_like(speechy)).requires_grad_()
    value = loss(noise, speechy)
    assert 0.1 < value.item() < 100
    value.backward()
    assert torch.isfinite(noise.grad).all() and noise.grad.abs().sum() > 0
    assert float(loss(speechy.to(torch.bfloat16), speechy)) < 0.1 * value.item()  # fp32 inside: rounding is small
