"""The run configuration's dataclasses: every setting, its type and its default.

The dataclasses are the only way settings reach code. Defaults follow the HiFi-GAN paper (V1 on
LJSpeech); recipes in ``configs/`` are YAML files that override them (``loading.py``). The
``model.generator`` section is each family's own dataclass (``distgan/families/<name>/config.py``).
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
class FamilyConfig:
    """The base of every family's ``model.generator`` section. ``family`` names the family, whose
    registered spec (``distgan.families``) gives the section's dataclass: its own fields only, so a
    field of another family is refused by name (``loading.family_section``)."""

    family: str = ""  # each family's section sets its own name here


def _default_generator() -> FamilyConfig:
    from distgan.families import DEFAULT_FAMILY, get_family

    return get_family(DEFAULT_FAMILY).config()


DISCRIMINATOR_KINDS = ("mpd", "msd", "mrd", "cqtd", "msstftd")


@dataclass
class DiscriminatorConfig:
    """The discriminator sets D holds (``kinds``, in this order) and each set's parameters.

    HiFi-GAN is MPD + MSD (the default), BigVGAN v1 MPD + MRD, BigVGAN v2 MPD + CQT-D, EnCodec
    MS-STFTD alone; any
    combination trains as one model with one optimizer (as BigVGAN's single ``optim_d`` over both
    of its sets). A set's fields are read only when it is listed. Defaults are HiFi-GAN's MPD/MSD
    and BigVGAN's MRD/CQT-D, EnCodec's MS-STFTD.
    """

    kinds: list[Literal["mpd", "msd", "mrd", "cqtd", "msstftd"]] = field(default_factory=lambda: ["mpd", "msd"])
    periods: list[int] = field(default_factory=lambda: [2, 3, 5, 7, 11])
    # Output channels of MPD's (kernel 5, stride 3) convolutions; the last one has stride 1.
    mpd_channels: list[int] = field(default_factory=lambda: [32, 128, 512, 1024, 1024])
    mpd_use_spectral_norm: bool = False
    # Number of MSD scales (1 = raw audio only; each further one average-pools by 2).
    msd_scales: int = 3
    # Output channels of MSD's seven convolutions (grouped 1, 4, 16, 16, 16, 16, 1).
    msd_channels: list[int] = field(default_factory=lambda: [128, 128, 256, 512, 1024, 1024, 1024])
    # MRD (BigVGAN v1, from UnivNet): one sub-discriminator per [n_fft, hop_length, win_length].
    mrd_resolutions: list[list[int]] = field(
        default_factory=lambda: [[1024, 120, 600], [2048, 240, 1200], [512, 50, 240]]
    )
    mrd_channels: int = 32
    mrd_use_spectral_norm: bool = False
    # CQT-D (BigVGAN v2): one sub-discriminator per entry of the three per-scale lists.
    cqtd_hop_lengths: list[int] = field(default_factory=lambda: [512, 256, 256])
    cqtd_n_octaves: list[int] = field(default_factory=lambda: [9, 9, 9])
    cqtd_bins_per_octaves: list[int] = field(default_factory=lambda: [24, 36, 48])
    cqtd_filters: int = 128
    cqtd_max_filters: int = 1024
    cqtd_filters_scale: int = 1
    cqtd_dilations: list[int] = field(default_factory=lambda: [1, 2, 4])
    cqtd_normalize_volume: bool = False
    # MS-STFTD (EnCodec): one sub-discriminator per entry of the three per-scale STFT lists.
    msstftd_filters: int = 32
    msstftd_max_filters: int = 1024
    msstftd_filters_scale: int = 1
    msstftd_n_ffts: list[int] = field(default_factory=lambda: [1024, 2048, 512, 256, 128])
    msstftd_hop_lengths: list[int] = field(default_factory=lambda: [256, 512, 128, 64, 32])
    msstftd_win_lengths: list[int] = field(default_factory=lambda: [1024, 2048, 512, 256, 128])
    msstftd_dilations: list[int] = field(default_factory=lambda: [1, 2, 4])
    # Divide the STFT by the window's L2 norm (torchaudio's normalized=True, as EnCodec).
    msstftd_normalized: bool = True


@dataclass
class ModelConfig:
    """``generator``: the family's own section (typed by ``generator.family``); ``discriminator``:
    the shared discriminator sets, for the families that combine them (``FamilySpec.reads``)."""

    generator: FamilyConfig = field(default_factory=_default_generator)
    discriminator: DiscriminatorConfig = field(default_factory=DiscriminatorConfig)


@dataclass
class MultiScaleMelConfig:
    """BigVGAN v2's multi-scale mel loss (``distgan.losses.multiscale_mel``): one entry per scale."""

    n_mels: list[int] = field(default_factory=lambda: [5, 10, 20, 40, 80, 160, 320])
    window_lengths: list[int] = field(default_factory=lambda: [32, 64, 128, 256, 512, 1024, 2048])
    clamp_eps: float = 1.0e-5
    power: float = 1.0


@dataclass
class BalancerConfig:
    """EnCodec's loss balancer (``distgan.losses.balancer``): G's loss terms that are functions of
    its audio (``audio_term_weights`` of the family's objective) contribute gradients to that audio
    in the ratio of their weights, each rescaled by an EMA of its own gradient norm; the other terms
    (a codec's commitment loss) are added unbalanced. Off by default: the weights are then plain
    multipliers."""

    enabled: bool = False
    # The norm of the balanced gradient w.r.t. the audio, shared by the terms in their weights' ratio.
    total_norm: float = 1.0
    # Decay of the (bias-corrected) moving average of each term's gradient norm.
    ema_decay: float = 0.999
    # Norms per clip (over all but the batch dimension), averaged over the batch; false: one norm.
    per_batch_item: bool = True
    epsilon: float = 1.0e-12
    # False: the plain weighted sum of the terms' gradients (the averages are still kept and logged).
    rescale_grads: bool = True


@dataclass
class LossConfig:
    """Loss weights, keyed by the names the trainer logs (``g/adv``, ``g/fm``, ``g/mel``).

    ``mel`` picks what ``g/mel`` is: ``single``, the L1 between log-mels of the model's own mel
    front end (HiFi-GAN, BigVGAN v1; weight 45), or ``multiscale``, the sum over seven STFT
    resolutions (BigVGAN v2; weight 15). Both span ``[audio.fmin, audio.fmax_loss]``.
    """

    adversarial: Literal["lsgan", "hinge", "bce"] = "lsgan"
    # G's side: "same" is the generator counterpart of ``adversarial`` (bce: non-saturating);
    # "mse" is the mean-squared error between D's probability sigmoid(D(G(z))) and the real label 1
    # (the WaveGAN recipes' formulation; needs ``adversarial: bce``).
    generator_adversarial: Literal["same", "mse"] = "same"
    adv_weight: float = 1.0
    fm_weight: float = 2.0
    mel_weight: float = 45.0
    mel: Literal["single", "multiscale"] = "single"
    multiscale_mel: MultiScaleMelConfig = field(default_factory=MultiScaleMelConfig)
    balancer: BalancerConfig = field(default_factory=BalancerConfig)


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
    # "cosine": after the warm-up, a half cosine from ``lr`` to 0 at ``train.max_steps`` instead of the
    # exponential decay (transformers' get_cosine_schedule_with_warmup, as Vocos trains).
    schedule: Literal["exponential", "cosine"] = "exponential"
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

    # A folder of .tar shards (with or without index.json), an index.json path, a brace pattern,
    # a pipe: URL, or a list of these. Empty: the built-in synthetic corpus, written once to the cache folder.
    shards: str | list[str] | None = None
    # Validation shards; empty: the samples val_fraction holds out, else the "val" split of ``shards``.
    val_shards: str | list[str] | None = None
    # Hold out about this fraction of the training samples for validation, chosen by a hash of
    # each sample's key (the same on every rank and run); the training stream skips them.
    val_fraction: float = 0.0
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
    # Then steps during which only the discriminator trains, against the frozen generator (a fresh
    # D catches up with a pretrained G before G's adversarial loss switches on; see train/step.py).
    d_warmup_steps: int = 0
    grad_accum: int = 1
    # Fine-tuning: start a new run (step 0, fresh data order and schedule) from these weights: a
    # distgan run dir, checkpoint or export, or a HiFi-GAN / BigVGAN checkpoint (train/init_from.py).
    init_from: str | None = None
    # Also take the discriminator from init_from (else a fresh one), and the Adam moments (DDP only).
    init_discriminator: bool = False
    init_optimizers: bool = False
    # An exponential moving average of G's weights, kept in fp32 (train/ema.py), moved after each G
    # update: null keeps none; audiocraft keeps one at 0.99. Validation, and `--ema` in synthesize,
    # decode, encode, sample and export, use it.
    ema_decay: float | None = None


@dataclass
class LogConfig:
    every_steps: int = 100
    # Validation: audio, spectrogram images, val/mel_l1 and the val_metrics (0: off).
    val_every_steps: int = 5000
    # Also validate every this many minutes of training (0: off); for runs bounded by time.
    val_every_minutes: float = 0.0
    val_clips: int = 4
    # wavegan: clips generated from fixed noise at each validation for val/frechet_mel and
    # val/pairwise_distance_ratio (the first ``val_clips`` of them are written as audio).
    val_generated_clips: int = 32
    # Quality metrics computed on the validation clips at each validation (rank 0), from
    # distgan.evaluation.metrics.METRICS; the f0 metrics (pYIN) cost ~0.5 s per clip.
    # A plain install computes mrstft; pesq and stoi need the eval extra (pip install -e ".[eval]").
    val_metrics: list[str] = field(default_factory=lambda: ["mrstft"])
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
    # After a collective fails, how long survivors wait for each other's answer before naming the
    # ranks that gave none as lost (train/peers.py).
    roll_call_seconds: float = 10.0


@dataclass
class DistConfig:
    """Distributed settings that are not chosen by the launcher."""

    # DeepSpeed JSON used when the launcher does not name one (e.g. under torchrun).
    deepspeed_config: str | None = None
    # "auto": nccl with CUDA, gloo otherwise.
    backend: Literal["auto", "nccl", "gloo"] = "auto"
    # How long a collective may wait for a rank before it fails (NCCL: how long survivors of a lost
    # node wait); a step's collectives take milliseconds, so minutes are only for stragglers.
    timeout_minutes: float = 10.0
    # BatchNorm under data parallelism (models that have it: wavegan). "sync": batch statistics over
    # every rank's slice (one batch, as on one device); "local": each rank's own slice, the running
    # estimates averaged over ranks before each checkpoint (train/sync_batchnorm.py).
    batchnorm: Literal["sync", "local"] = "sync"


@dataclass
class PerfConfig:
    """Speed switches that leave the arithmetic of a step alone (``distgan.train.performance``).

    All but ``optimizer_impl`` act only on CUDA. The GPU defaults follow what is known of
    conv-heavy vocoders (HiFi-GAN's train.py sets cuDNN autotuning) and await a GPU measurement
    (``launch/gpu_bench.sh``); the CPU choice of ``optimizer_impl: auto`` was measured.
    """

    # cuDNN tries the convolution algorithms for each new shape and keeps the fastest.
    cudnn_benchmark: bool = True
    # TF32 tensor cores for fp32 matmuls and convolutions (Ampere and later; ~10 mantissa bits).
    tensorfloat: bool = True
    # AdamW's implementation: auto (fused, on CUDA and CPU), fused, foreach, plain.
    optimizer_impl: Literal["auto", "fused", "foreach", "plain"] = "auto"
    # torch.compile G and D (DDP path; not under DeepSpeed); the first step compiles.
    compile: bool = False
    compile_backend: str = "inductor"
    # Page-locked host batches, so that the copy to the GPU runs asynchronously.
    pin_memory: bool = True


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
    perf: PerfConfig = field(default_factory=PerfConfig)
