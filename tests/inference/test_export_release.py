"""``distgan export --format hifigan|bigvgan``: the original code (PyPI ``hifi-gan`` 0.0.2, ``bigvgan``
2.4.1) builds its models from the exported config.json, loads the exported files strictly
(weights only), and its generator sounds like distgan's; its optimizers take the exported states."""

from __future__ import annotations

import itertools
import json
import shutil
from pathlib import Path
from unittest import mock

import pytest
import torch

import distgan
from distgan import cli
from distgan.checkpoint.files import digest
from distgan.config import DiscriminatorConfig, OptimizerConfig, load_config
from distgan.families import build_generator
from distgan.inference.export_release import export_release, reference_optimizer
from distgan.inference.release_formats import discriminator_keys
from distgan.models.build import build_discriminators
from distgan.models.discriminators import Discriminators
from distgan.models.reference_weights import reference_parameter_names, reference_state_dict
from tests.inference.helpers import HOP_LENGTH, TRAINED_STEPS, val_clips, write_checkpoint
from tests.models.helpers import single_thread
from tests.train.helpers import REPO_ROOT

hifi_gan = pytest.importorskip("hifi_gan.models", reason="the hifi-gan reference package is not installed")
AttrDict = pytest.importorskip("hifi_gan.env").AttrDict
pytest.importorskip("nnAudio", reason="BigVGAN's CQT discriminator needs nnAudio")
bigvgan = pytest.importorskip("bigvgan.bigvgan", reason="the bigvgan reference package is not installed")
bigvgan_d = pytest.importorskip("bigvgan.discriminators")
# BigVGAN's mel from a config's keys; HiFi-GAN's is the same function, but it calls librosa with
# positional arguments, which the installed librosa refuses.
reference_mel = pytest.importorskip("bigvgan.meldataset").get_mel_spectrogram

pytestmark = [pytest.mark.filterwarnings("ignore:.*torch.nn.utils.weight_norm.* is deprecated:FutureWarning"),
              pytest.mark.filterwarnings("ignore:A window was not provided:UserWarning")]

# The keys of jik876/hifi-gan's config_v1.json, and those NVIDIA/BigVGAN's v2 configs add to them.
HIFIGAN_KEYS = {"resblock", "num_gpus", "batch_size", "learning_rate", "adam_b1", "adam_b2", "lr_decay", "seed",
                "upsample_rates", "upsample_kernel_sizes", "upsample_initial_channel", "resblock_kernel_sizes",
                "resblock_dilation_sizes", "segment_size", "num_mels", "num_freq", "n_fft", "hop_size", "win_size",
                "sampling_rate", "fmin", "fmax", "fmax_for_loss", "num_workers", "dist_config"}
BIGVGAN_V2_KEYS = HIFIGAN_KEYS | {
    "use_tanh_at_final", "use_bias_at_final", "activation", "snake_logscale", "use_cqtd_instead_of_mrd",
    "cqtd_filters", "cqtd_max_filters", "cqtd_filters_scale", "cqtd_dilations", "cqtd_hop_lengths",
    "cqtd_n_octaves", "cqtd_bins_per_octaves", "mpd_reshapes", "use_spectral_norm", "discriminator_channel_mult",
    "use_multiscale_melloss", "lambda_melloss", "clip_grad_norm"}
# configs/bigvgan_tiny.yaml with an MPD BigVGAN's code can build: its widths times 1/32.
BIGVGAN_TINY = REPO_ROOT / "configs" / "bigvgan_tiny.yaml"
BIGVGAN_TINY_MPD = "model.discriminator.mpd_channels=[1,4,16,32,32]"
BIGVGAN_STEP, BIGVGAN_EPOCH = 3, 1


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    with single_thread():
        yield


def clip(frames: int) -> torch.Tensor:
    return next(iter(val_clips().values()))[: frames * HOP_LENGTH].unsqueeze(0)


def fake_step(model: torch.nn.Module, optim: OptimizerConfig) -> torch.optim.Optimizer:
    """AdamW as after a step, its moments a different constant per parameter (expanded views: no
    memory), so that each parameter's state says which parameter it belongs to."""
    optimizer = torch.optim.AdamW(model.parameters(), lr=optim.lr, betas=tuple(optim.betas))
    for i, param in enumerate(model.parameters()):
        value = torch.tensor(1e-3 * (i + 1))
        optimizer.state[param] = {"step": torch.tensor(1.0), "exp_avg": value.expand(param.shape),
                                  "exp_avg_sq": (value**2).expand(param.shape)}
    return optimizer


def assert_same_moments(states: list[dict], named: list[tuple[str, torch.nn.Parameter]],
                        ours: torch.optim.Optimizer, our_named: list[tuple[str, torch.nn.Parameter]]) -> None:
    """``states[j]``, the reference optimizer's state of its j-th parameter (``named``, as the reference
    names them), is ours for the parameter of that name (``our_named``: ours under the reference's names)."""
    expected = {name: ours.state[param] for name, param in our_named}
    assert len(states) == len(named) == len(expected)
    for state, (name, param) in zip(states, named, strict=True):
        first = (0,) * param.dim()
        for moment in ("exp_avg", "exp_avg_sq"):
            assert state[moment].shape == param.shape, name
            assert state[moment][first] == expected[name][moment][first], name


def our_named(model: torch.nn.Module, prefix: str = "") -> list[tuple[str, torch.nn.Parameter]]:
    """``model``'s parameters under the reference's names."""
    return [(prefix + name, param) for name, param in zip(reference_parameter_names(model), model.parameters(),
                                                          strict=True)]


def test_hifigan_release_loads_in_the_original_code_and_sounds_the_same(tiny_run: Path, tmp_path: Path) -> None:
    out = tmp_path / "hifigan"
    assert cli.main(["export", str(tiny_run), str(out), "--format", "hifigan"]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["config.json", f"g_{TRAINED_STEPS:08d}"]
    config = json.loads((out / "config.json").read_text())
    assert set(config) == HIFIGAN_KEYS
    h = AttrDict(config)

    # As its inference.py does: Generator(h), load state_dict['generator'], remove weight norm.
    reference = hifi_gan.Generator(h)
    reference.load_state_dict(torch.load(out / f"g_{TRAINED_STEPS:08d}", weights_only=True)["generator"])
    reference.eval().remove_weight_norm()
    vocoder = distgan.load_generator(tiny_run)
    wave = clip(40)
    mel = vocoder.encode(wave)
    # config.json's audio keys give the reference's mel function the model's own mel.
    torch.testing.assert_close(reference_mel(wave, h), mel, rtol=0, atol=1e-4)
    with torch.no_grad():
        expected = reference(mel).squeeze(1)
    assert expected.abs().max() > 1e-3
    torch.testing.assert_close(vocoder(mel), expected, rtol=0, atol=1e-6)


def test_formats_refuse_what_the_original_code_cannot_hold(tiny_run: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "release"
    assert cli.main(["export", str(tiny_run), str(out), "--format", "hifigan", "--discriminator"]) == 2
    message = capsys.readouterr().out
    assert ("model.discriminator.mpd_channels=[8, 16, 32, 32], but HiFi-GAN's code has "
            "[32, 128, 512, 1024, 1024]") in message
    assert "msd_scales=2" in message and str(tiny_run) in message
    assert cli.main(["export", str(tiny_run), str(out), "--format", "bigvgan"]) == 2
    assert "model.generator.family=hifigan" in capsys.readouterr().out
    assert cli.main(["export", str(tiny_run), str(out / "g.safetensors"), "--format", "hifigan"]) == 2
    assert "writes a folder" in capsys.readouterr().out
    assert cli.main(["export", str(tiny_run), str(tmp_path / "g.safetensors"), "--optimizer"]) == 2
    assert "go with --format hifigan or bigvgan" in capsys.readouterr().out
    assert not out.exists()


def test_hifigan_discriminators_and_optimizer_load_into_the_original_code() -> None:
    """At the paper's sizes, the only ones HiFi-GAN's code builds: every key and shape (the numbers of
    the mapping: tests/models/test_reference_weights.py). Initialising 2 x 70M weights would take
    seconds and they are not compared, so the convolutions skip it (the meta device is slower still)."""
    cfg, optim = DiscriminatorConfig(), OptimizerConfig()
    with mock.patch.object(torch.nn.modules.conv._ConvNd, "reset_parameters", lambda self: None):
        ours = Discriminators(cfg)
        references = {"mpd": hifi_gan.MultiPeriodDiscriminator(), "msd": hifi_gan.MultiScaleDiscriminator()}
    optimizer = fake_step(ours, optim)
    keys = discriminator_keys("hifigan", cfg)
    for kind, key in keys:
        references[key].load_state_dict(reference_state_dict(getattr(ours, kind)))  # strict

    named = [(f"{kind}.{name}", p) for kind, _ in keys for name, p in getattr(ours, kind).named_parameters()]
    state = reference_optimizer(named, optim, optimizer.state_dict(), [name for name, _ in ours.named_parameters()])
    # As its train.py builds optim_d: MSD's parameters, then MPD's.
    reference_named = [(f"{key}.{name}", p) for key in ("msd", "mpd")
                       for name, p in references[key].named_parameters()]
    assert_same_moments([state["state"][j] for j in range(len(reference_named))], reference_named, optimizer,
                        [item for kind, key in keys for item in our_named(getattr(ours, kind), f"{key}.")])
    torch.optim.AdamW([p for _, p in reference_named]).load_state_dict(state)


@pytest.fixture(scope="module")
def bigvgan_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    """A checkpoint of the tiny BigVGAN (MPD + CQT-D) whose optimizers took one step: the run and
    its models and optimizers."""
    torch.manual_seed(2)
    cfg = load_config(BIGVGAN_TINY, [BIGVGAN_TINY_MPD])
    models = {"generator": build_generator(cfg.model.generator, cfg.audio),
              "discriminator": build_discriminators(cfg.model.discriminator, cfg.audio.sample_rate)}
    optimizers = {name: fake_step(model, cfg.optim.generator) for name, model in models.items()}
    run = tmp_path_factory.mktemp("bigvgan-run")
    write_checkpoint(run, cfg, models, optimizers, BIGVGAN_STEP, BIGVGAN_EPOCH)
    return run, {"models": models, "optimizers": optimizers}


def test_bigvgan_release_loads_in_the_original_code(bigvgan_run: tuple[Path, dict], tmp_path: Path) -> None:
    run, made = bigvgan_run
    out = tmp_path / "bigvgan"
    written = export_release(run, out, "bigvgan", optimizer=True)
    assert sorted(p.name for p in written) == ["bigvgan_discriminator_optimizer.pt", "bigvgan_generator.pt",
                                               "config.json"]
    config = json.loads((out / "config.json").read_text())
    assert set(config) - BIGVGAN_V2_KEYS == {"cqtd_normalize_volume"}
    assert BIGVGAN_V2_KEYS <= set(config)
    h = AttrDict(config)

    # As its inference.py does: from_pretrained on the folder, remove weight norm.
    # (Its loader itself: the installed huggingface_hub's from_pretrained no longer passes it two
    # arguments it requires.)
    reference = bigvgan.BigVGAN._from_pretrained(model_id=str(out), revision=None, cache_dir=None,
                                                 force_download=False, proxies=None, resume_download=False,
                                                 local_files_only=True, token=None)
    reference.remove_weight_norm()
    vocoder = distgan.load_generator(run)
    wave = clip(24)
    mel = vocoder.encode(wave)
    torch.testing.assert_close(reference_mel(wave, h), mel, rtol=0, atol=1e-4)
    with torch.no_grad():
        expected = reference.eval()(mel).squeeze(1)
    assert expected.abs().max() > 1e-3
    torch.testing.assert_close(vocoder(mel), expected, rtol=0, atol=1e-6)

    saved = torch.load(out / "bigvgan_discriminator_optimizer.pt", weights_only=True)
    assert (saved["steps"], saved["epoch"]) == (BIGVGAN_STEP - 1, BIGVGAN_EPOCH)
    mpd, cqtd = bigvgan_d.MultiPeriodDiscriminator(h), bigvgan_d.MultiScaleSubbandCQTDiscriminator(h)
    mpd.load_state_dict(saved["mpd"])  # strict
    cqtd.load_state_dict(saved["mrd"])  # its train.py keeps CQT-D under "mrd"
    generator = bigvgan.BigVGAN(h)
    generator.load_state_dict(torch.load(out / "bigvgan_generator.pt", weights_only=True)["generator"])
    optim_g = torch.optim.AdamW(generator.parameters())
    optim_g.load_state_dict(saved["optim_g"])
    reference_named = list(generator.named_parameters())
    assert_same_moments([optim_g.state[p] for _, p in reference_named], reference_named,
                        made["optimizers"]["generator"], our_named(made["models"]["generator"]))
    optim_d = torch.optim.AdamW(itertools.chain(cqtd.parameters(), mpd.parameters()))  # as its train.py
    optim_d.load_state_dict(saved["optim_d"])
    reference_named = [(f"{key}.{name}", p) for key, module in (("mrd", cqtd), ("mpd", mpd))
                       for name, p in module.named_parameters()]
    d = made["models"]["discriminator"]
    assert_same_moments([optim_d.state[p] for _, p in reference_named], reference_named,
                        made["optimizers"]["discriminator"], our_named(d.cqtd, "mrd.") + our_named(d.mpd, "mpd."))
    # Its ExponentialLR resumes from the exported groups (it needs their initial_lr).
    torch.optim.lr_scheduler.ExponentialLR(optim_d, gamma=h.lr_decay, last_epoch=saved["epoch"])

    # Without --optimizer: the same file with fresh optimizers, which its train.py loads all the same.
    notes: list[str] = []
    export_release(run, tmp_path / "fresh", "bigvgan", discriminator=True, report=notes.append)
    fresh = torch.load(tmp_path / "fresh" / "bigvgan_discriminator_optimizer.pt", weights_only=True)
    assert fresh["optim_g"]["state"] == fresh["optim_d"]["state"] == {}
    assert fresh["optim_g"]["param_groups"][0]["initial_lr"] == h.learning_rate
    torch.optim.AdamW(itertools.chain(cqtd.parameters(), mpd.parameters())).load_state_dict(fresh["optim_d"])
    assert notes == ["bigvgan_discriminator_optimizer.pt: optim_g and optim_d are fresh AdamW states "
                     "(pass --optimizer for the run's)"]


def test_zero_checkpoints_export_weights_but_not_optimizers(bigvgan_run: tuple[Path, dict], tmp_path: Path,
                                                           capsys) -> None:
    run, _ = bigvgan_run
    zero = shutil.copytree(run, tmp_path / "zero-run")
    (checkpoint,) = (zero / "checkpoints").iterdir()
    # What a DeepSpeed checkpoint has in place of state.pt (its shards are never read here).
    (checkpoint / "generator" / "state.pt").unlink()
    (checkpoint / "generator" / "zero").mkdir()
    (checkpoint / "generator" / "zero" / "latest").write_text("zero")
    files = {p.relative_to(checkpoint).as_posix(): digest(p) for p in checkpoint.rglob("*")
             if p.is_file() and p.name != "COMPLETE"}
    meta = {**json.loads((checkpoint / "COMPLETE").read_text()), "deepspeed_stage": 2, "files": files}
    (checkpoint / "COMPLETE").write_text(json.dumps(meta))
    assert cli.main(["export", str(zero), str(tmp_path / "out"), "--format", "bigvgan", "--optimizer"]) == 2
    message = capsys.readouterr().out
    assert "ZeRO-2 partitioned" in message and "export without --optimizer" in message
    assert not (tmp_path / "out").exists()


def test_bigvgan_mrd_and_its_config_load_into_the_original_code(tmp_path: Path) -> None:
    """BigVGAN v1's MRD (a width BigVGAN's mrd_channel_mult gives) from config.json, without a run."""
    from distgan.inference.release_formats import release_config

    cfg = load_config(BIGVGAN_TINY, [BIGVGAN_TINY_MPD, "model.discriminator.kinds=[mpd,mrd]",
                                     "model.discriminator.mrd_channels=4"])
    h = AttrDict(release_config("bigvgan", cfg, world_size=2))
    assert (h.batch_size, h.use_cqtd_instead_of_mrd, h.mrd_channel_mult) == (8, False, 0.125)
    ours = build_discriminators(cfg.model.discriminator, cfg.audio.sample_rate)
    assert discriminator_keys("bigvgan", cfg.model.discriminator) == [("mrd", "mrd"), ("mpd", "mpd")]
    bigvgan_d.MultiResolutionDiscriminator(h).load_state_dict(reference_state_dict(ours.mrd))
    bigvgan_d.MultiPeriodDiscriminator(h).load_state_dict(reference_state_dict(ours.mpd))

