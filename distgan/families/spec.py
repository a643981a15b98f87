"""What a model family declares: ``FamilySpec`` (torch-free) and ``FamilyParts`` (its torch side).

A family is one folder under ``distgan/families/`` (or any importable module, see the registry in
``distgan/families/__init__.py``) whose ``SPEC`` answers every question the rest of distgan asks
about it, so that nothing outside the folder compares a family's name:

- the config: ``config``, the dataclass of its ``model.generator`` section (its own fields only;
  ``family`` picks it), ``check``, its cross-field checks, and ``reads``, which of the settings
  that only some families use (``OPTIONAL_SETTINGS``) it reads: the others are refused when
  changed, since they would silently do nothing;
- inference: ``generator_input`` (what its generator turns into audio, for messages) and
  ``offers`` (``synthesize`` from a mel, ``sample`` from noise);
- release formats: ``release_formats``, the original projects' checkpoint layouts it reads and
  writes (``distgan.families.release.ReleaseFormat``: what ``train.init_from`` and
  ``distgan export --format`` use);
- ``parts``: the module holding its ``PARTS`` (``FamilyParts``): its models, objective,
  validator, receptive field and reference-code hooks. That module imports torch, so it is named
  here and imported on first use: reading and checking a config stays fast.

The split follows torchtitan's ``TrainSpec`` (one registered entry per model: model, loss,
optimizers, state-dict adapters) and vocos's declared pieces (feature extractor, backbone, head).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from distgan.config import Config
    from distgan.config.schema import FamilyConfig
    from distgan.families.release import ReleaseFormat

# Settings that some families read and others do not (a dotted key; a section stands for each of
# its fields). A family that does not read one refuses it changed from its default.
OPTIONAL_SETTINGS = ("model.discriminator", "loss.fm_weight", "loss.mel_weight", "loss.mel", "loss.multiscale_mel",
                     "train.mel_only_steps", "log.val_metrics", "log.val_generated_clips", "dist.batchnorm")
# What a mel-to-waveform vocoder reads of them (HiFi-GAN, BigVGAN).
VOCODER_SETTINGS = frozenset(OPTIONAL_SETTINGS) - {"log.val_generated_clips", "dist.batchnorm"}


@dataclass(frozen=True)
class FamilyParts:
    """A family's torch side, built on first use (``FamilySpec.load_parts``).

    - ``build_generator(section, audio)``: a fresh generator from the family's ``model.generator``
      section (and the audio settings: a mel generator's input bands);
    - ``build_discriminator(cfg)``: a fresh discriminator for the run's config;
    - ``objective(cfg, mel_input, mel_loss, info)``: what the step trains, an object with
      ``generator_input(wave, step, rank, micro_batch)``, ``discriminator_terms(real_logits,
      fake_logits)`` and ``generator_terms(wave, fake, frozen_d)`` (``distgan.train.step``);
    - ``validator``: the class that validates a run (``distgan.train.validation.Validator``'s
      signature);
    - ``receptive_field(section)``: input frames ``(before, after)`` one output sample reads, for
      batched synthesis (mel generators only);
    - ``front_end(section, audio)``: the module that turns a waveform ``[B, T]`` into what a mel generator
      takes, in training, validation and inference alike (None: distgan's log-mel,
      ``distgan.losses.mel.MelSpectrogram``, which HiFi-GAN and BigVGAN share);
    - ``reference``: hooks of the original code for the parity tests and ``bench step --baseline
      reference`` (``distgan.bench.reference_step``), or None.
    """

    build_generator: Callable[[Any, Any], Any]
    build_discriminator: Callable[[Config], Any]
    objective: Callable[..., Any]
    validator: Callable[..., Any]
    receptive_field: Callable[[Any], tuple[int, int]] | None = None
    front_end: Callable[[Any, Any], Any] | None = None
    reference: Any = None


@dataclass(frozen=True)
class FamilySpec:
    name: str
    config: type[FamilyConfig]
    check: Callable[[Config], None]
    parts: str  # module path of the family's PARTS
    reads: frozenset[str] = VOCODER_SETTINGS
    generator_input: str = "mel spectrograms"
    offers: tuple[str, ...] = ("synthesize",)
    release_formats: Mapping[str, ReleaseFormat] = field(default_factory=dict)
    # Loss terms its objective returns beyond the trainer's standard ones (``logger.LOSS_KEYS``),
    # so that they are reduced over ranks and logged like them.
    extra_terms: tuple[str, ...] = ()
    # How a refusal of unread settings is worded (None: "X only applies to model.generator.family: ...").
    refusal: Callable[[list[str]], str] | None = None

    def load_parts(self) -> FamilyParts:
        parts = importlib.import_module(self.parts).PARTS
        if not isinstance(parts, FamilyParts):
            raise TypeError(f"{self.parts}.PARTS is not a FamilyParts (family {self.name!r})")
        return parts
