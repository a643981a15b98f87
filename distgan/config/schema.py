"""The run configuration's dataclasses: every setting, its type and its default.

The dataclasses are the only way settings reach code. Defaults follow the HiFi-GAN paper (V1 on
LJSpeech); recipes in ``configs/`` are YAML files that override them (``loading.py``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal


class ConfigError(ValueError):
    """A config file or override is invalid; the message names the key."""


# The columns of distgan.evaluation.metrics.METRICS (kept torch-free here; a test checks they agree).
QUALITY_METRICS = ("mel_l1", "mrstft", "pesq", "stoi", "f0_rmse_cents", "f0_rmse_hz", "vuv_f1")


@dataclass
class AudioConfig:
    """Sample rate and mel-spectrogram parameters shared by data, model input and losses."""

    sample_rate: int = 22050
    n_fft: int = 1024
    hop_length: int = 256
    win_length: int = 1024
    n_mels: int = 80
    fmin: float = 0.0
    fmax: float | None = 8000.0
    # HiFi-GAN computes its mel loss over the full band (``fmax_for_loss: null`` in its configs).
    fmax_loss: float | None = None


@dataclass
class GeneratorConfig:
    """HiFi-GAN generator; the defaults are V1. ``prod(upsample_rates)`` must equal the hop length."""

    upsample_rates: list[int] = field(default_factory=lambda: [8, 8, 2, 2])
    upsample_kernel_sizes: list[int] = field(default_factory=lambda: [16, 16, 4, 4])
    upsample_initial_channel: int = 512
    resblock: Literal["1", "2"] = "1"
    resblock_kernel_sizes: list[int] = field(default_factory=lambda: [3, 7, 11])
    resblock_dilation_sizes: list[list[int]] = field(
        default_factory=lambda: [[1, 3, 5], [1, 3, 5], [1, 3, 5]]
    )


@dataclass
class DiscriminatorConfig:
    """Multi-period (MPD) and multi-scale (MSD) discriminators, with HiFi-GAN's channel widths."""

    periods: list[int] = field(default_factory=lambda: [2, 3, 5, 7, 11])
    # Output channels of MPD's (kernel 5, stride 3) convolutions; the last one has stride 1.
    mpd_channels: list[int] = field(default_factory=lambda: [32, 128, 512, 1024, 1024])
    # Number of MSD scales (1 = raw audio only; each further one average-pools by 2).
    msd_scales: int = 3
    # Output channels of MSD's seven convolutions (grouped 1, 4, 16, 16, 16, 16, 1).
    msd_channels: list[int] = field(default_factory=lambda: [128, 128, 256, 512, 1024, 1024, 1024])


@dataclass
class ModelConfig:
    generator: GeneratorConfig = field(default_factory=GeneratorConfig)
    discriminator: DiscriminatorConfig = field(default_factory=DiscriminatorConfig)


@dataclass
class LossConfig:
    """Loss weights, keyed by the names the trainer logs (``g/adv``, ``g/fm``, ``g/mel``)."""

    adversarial: Literal["lsgan", "hinge", "bce"] = "lsgan"
    adv_weight: float = 1.0
    fm_weight: float = 2.0
    mel_weight: float = 45.0


@dataclass
class OptimizerConfig:
    """AdamW and its learning-rate schedule for one model (HiFi-GAN: same for G and D)."""

    lr: float = 2.0e-4
    betas: list[float] = field(default_factory=lambda: [0.8, 0.99])
    eps: float = 1.0e-8  # torch.optim.AdamW default, as in the HiFi-GAN code
    weight_decay: float = 0.01
    # Exponential decay, applied once per ``lr_decay_every`` (HiFi-GAN: 0.999 per epoch).
    lr_decay: float = 0.999
    lr_decay_every: Literal["epoch", "step"] = "epoch"
    warmup_steps: int = 0
    # Max gradient norm; null means no clipping (HiFi-GAN does not clip).
    grad_clip: float | None = None


@dataclass
class OptimConfig:
    generator: OptimizerConfig = field(default_factory=OptimizerConfig)
    discriminator: OptimizerConfig = field(default_factory=OptimizerConfig)


@dataclass
class SyntheticConfig:
    """The built-in synthetic corpus used when ``data.shards`` is empty."""

    speakers: int = 4
    utterances: int = 48
    seed: int = 0


@dataclass
class DataConfig:
    """Where the shards are and how segments are cut and batched (batch size is per rank)."""

    # A folder holding index.json, an index.json path, a brace pattern or a pipe: URL.
    # Empty: the built-in synthetic corpus, written once to the cache folder.
    shards: str | None = None
    # Validation shards; empty means the "val" split of ``shards``' index.json.
    val_shards: str | None = None
    # Run the shell commands of pipe: shards listed in an index.json (a file, maybe a stranger's).
    allow_index_pipes: bool = False
    segment_samples: int = 8192
    batch_size: int = 16
    num_workers: int = 2
    prefetch_factor: int = 2
    shuffle_buffer: int = 128
    # What to do with clips shorter than a segment: skip them (counted) or zero-pad them.
    short_clips: Literal["skip", "pad"] = "skip"
    synthetic: SyntheticConfig = field(default_factory=SyntheticConfig)


@dataclass
class TrainConfig:
    max_steps: int = 2_500_000
    seed: int = 1234
    # fp32, or mixed precision with bf16 or fp16 (loss-scaled) compute.
    precision: Literal["fp32", "bf16", "fp16"] = "fp32"
    # Discriminator updates per generator update; every step updates D, every n-th also G.
    d_steps_per_g: int = 1
    # Steps at the start during which only the generator trains, on the mel loss alone.
    mel_only_steps: int = 0
    grad_accum: int = 1


@dataclass
class LogConfig:
    every_steps: int = 100
    # Validation: audio, spectrogram images, val/mel_l1 and the val_metrics (0: off).
    val_every_steps: int = 5000
    val_clips: int = 4
    # Quality metrics computed on the validation clips at each validation (rank 0), from
    # distgan.evaluation.metrics.METRICS; the f0 metrics (pYIN) cost ~0.5 s per clip.
    val_metrics: list[str] = field(default_factory=lambda: ["mrstft", "pesq", "stoi"])
    progress_bar: bool = True


@dataclass
class CheckpointConfig:
    every_steps: int = 5000
    keep_last: int = 3


@dataclass
class FaultConfig:
    """How the run reacts to numerical faults and stalls."""

    # Stop after this many consecutive updates skipped for non-finite losses or gradients.
    max_consecutive_skips: int = 20
    # Instead of stopping, reload the last checkpoint and scale both learning rates by this.
    rollback_lr_factor: float | None = None
    # Exit non-zero when a rank makes no progress for this long (0 disables the watchdog).
    watchdog_minutes: float = 30.0


@dataclass
class DistConfig:
    """Distributed settings that are not chosen by the launcher."""

    # DeepSpeed JSON used when the launcher does not name one (e.g. under torchrun).
    deepspeed_config: str | None = None
    # "auto": nccl with CUDA, gloo otherwise.
    backend: Literal["auto", "nccl", "gloo"] = "auto"
    timeout_minutes: float = 30.0


@dataclass
class Config:
    audio: AudioConfig = field(default_factory=AudioConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    data: DataConfig = field(default_factory=DataConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    log: LogConfig = field(default_factory=LogConfig)
    checkpoint: CheckpointConfig = field(default_factory=CheckpointConfig)
    faults: FaultConfig = field(default_factory=FaultConfig)
    dist: DistConfig = field(default_factory=DistConfig)
