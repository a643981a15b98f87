"""NVIDIA's official BigVGAN recipes (configs/*.json of NVIDIA/BigVGAN v2.4) as constructor arguments.

Plain dictionaries, one per recipe, for ``BigVGANGenerator(**GENERATOR_PRESETS[name])`` and the
discriminator sets; the reference parity tests build NVIDIA's modules from the same values. Every
official recipe pairs the generator with HiFi-GAN's MPD (periods 2, 3, 5, 7, 11; channel widths 32,
128, 512, 1024, 1024; weight norm); v1 adds MRD and the single-scale mel loss (weight 45), v2 the
CQT discriminator and the multi-scale mel loss (weight 15).
"""

from __future__ import annotations

from typing import Any

_AMP = {
    "resblock": "1",
    "resblock_kernel_sizes": [3, 7, 11],
    "resblock_dilation_sizes": [[1, 3, 5], [1, 3, 5], [1, 3, 5]],
    "activation": "snakebeta",
    "snake_logscale": True,
}
_V2_256X = {"upsample_rates": [4, 4, 2, 2, 2, 2], "upsample_kernel_sizes": [8, 8, 4, 4, 4, 4],
            "upsample_initial_channel": 1536, **_AMP, "use_tanh_at_final": False, "use_bias_at_final": False}

GENERATOR_PRESETS: dict[str, dict[str, Any]] = {
    # v2 (2024): 112M parameters, clamped output without bias.
    "v2_22khz_80band_256x": {"n_mels": 80, **_V2_256X},
    "v2_24khz_100band_256x": {"n_mels": 100, **_V2_256X},
    "v2_44khz_128band_512x": {"n_mels": 128, **_V2_256X, "upsample_rates": [8, 4, 2, 2, 2, 2],
                              "upsample_kernel_sizes": [16, 8, 4, 4, 4, 4]},
    # v1 (2022): the 112M model and the 14M base model, both with tanh and a bias at the end.
    "v1_22khz_80band": {"n_mels": 80, **_V2_256X, "use_tanh_at_final": True, "use_bias_at_final": True},
    "v1_base_22khz_80band": {"n_mels": 80, "upsample_rates": [8, 8, 2, 2], "upsample_kernel_sizes": [16, 16, 4, 4],
                             "upsample_initial_channel": 512, **_AMP, "use_tanh_at_final": True,
                             "use_bias_at_final": True},
}

# Sample rate of each recipe (the CQT discriminator and the multi-scale mel loss need it).
SAMPLE_RATES: dict[str, int] = {
    "v2_22khz_80band_256x": 22050,
    "v2_24khz_100band_256x": 24000,
    "v2_44khz_128band_512x": 44100,
    "v1_22khz_80band": 22050,
    "v1_base_22khz_80band": 22050,
}

MPD_PRESET: dict[str, Any] = {"periods": [2, 3, 5, 7, 11], "channels": [32, 128, 512, 1024, 1024],
                              "use_spectral_norm": False}
MRD_PRESET: dict[str, Any] = {"resolutions": [[1024, 120, 600], [2048, 240, 1200], [512, 50, 240]],
                              "channels": 32, "use_spectral_norm": False}
# Without sample_rate, which comes from SAMPLE_RATES.
CQT_PRESET: dict[str, Any] = {"hop_lengths": [512, 256, 256], "n_octaves": [9, 9, 9],
                              "bins_per_octaves": [24, 36, 48], "filters": 128, "max_filters": 1024,
                              "filters_scale": 1, "dilations": [1, 2, 4], "normalize_volume": False}

# The audio and training keys of the same JSON files, under NVIDIA's names (configs/bigvgan_*.yaml
# carry them over; tests/config/test_bigvgan_recipes.py holds the recipes to them). Keys a file
# leaves out take train.py's defaults: clip_grad_norm 1000, lambda_melloss 45, single-scale mel loss.
# lr_decay is applied per step (train.py steps its ExponentialLR every iteration since v2), the
# batch size is per GPU, and AdamW keeps PyTorch's defaults (eps 1e-8, weight decay 0.01).
_TRAIN_V2 = {"batch_size": 4, "learning_rate": 1e-4, "adam_b1": 0.8, "adam_b2": 0.99, "lr_decay": 0.9999996,
             "seed": 1234, "segment_size": 65536, "fmin": 0, "fmax": None, "fmax_for_loss": None,
             "use_multiscale_melloss": True, "lambda_melloss": 15, "clip_grad_norm": 500}
_AUDIO_22K = {"sampling_rate": 22050, "num_mels": 80, "n_fft": 1024, "hop_size": 256, "win_size": 1024}
TRAINING_PRESETS: dict[str, dict[str, Any]] = {
    "v2_22khz_80band_256x": {**_TRAIN_V2, **_AUDIO_22K},
    "v2_24khz_100band_256x": {**_TRAIN_V2, "sampling_rate": 24000, "num_mels": 100, "n_fft": 1024, "hop_size": 256,
                              "win_size": 1024},
    "v2_44khz_128band_512x": {**_TRAIN_V2, "sampling_rate": 44100, "num_mels": 128, "n_fft": 2048, "hop_size": 512,
                              "win_size": 2048},
    "v1_base_22khz_80band": {**_AUDIO_22K, "batch_size": 32, "learning_rate": 1e-4, "adam_b1": 0.8, "adam_b2": 0.99,
                             "lr_decay": 0.9999996, "seed": 1234, "segment_size": 8192, "fmin": 0, "fmax": 8000,
                             "fmax_for_loss": None, "use_multiscale_melloss": False, "lambda_melloss": 45,
                             "clip_grad_norm": 1000},
}
