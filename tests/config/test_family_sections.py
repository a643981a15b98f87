"""``model.generator`` is typed by its family: configs and checkpoints written before families were
declared load as they meant, the old ``model.wavegan`` key is read with a message naming the new
one, and a field of another family is refused naming that family."""

from __future__ import annotations

import dataclasses

import pytest

from distgan.config import ConfigError, config_from_yaml_text, family_section, load_config
from distgan.families import family_names, get_family
from tests.train.helpers import REPO_ROOT

PRE_FAMILIES = REPO_ROOT / "tests" / "config" / "pre_families"


@pytest.mark.parametrize("recipe", ["tiny", "bigvgan_tiny", "wavegan_tiny"])
def test_a_checkpoint_config_from_before_families_loads_as_the_recipe(recipe: str, capsys) -> None:
    old = config_from_yaml_text((PRE_FAMILIES / f"{recipe}.yaml").read_text())
    assert old == load_config(REPO_ROOT / "configs" / f"{recipe}.yaml")
    assert type(old.model.generator) is get_family(old.model.generator.family).config
    moved = "section 'model.wavegan' is deprecated, read as 'model.generator'"
    assert (moved in capsys.readouterr().err) == (recipe == "wavegan_tiny")


def test_the_old_wavegan_key_is_read_with_a_message(capsys) -> None:
    cfg = load_config(REPO_ROOT / "configs" / "wavegan_tiny.yaml", ["model.wavegan.latent_dim=12"])
    assert cfg.model.generator.latent_dim == 12
    assert "'model.wavegan.latent_dim' is deprecated, read as 'model.generator.latent_dim'" in capsys.readouterr().err


def test_another_family_s_field_is_refused_by_name_and_its_default_dropped() -> None:
    with pytest.raises(ConfigError, match=r"model.generator.latent_dim only applies to model.generator.family: "
                                          r"wavegan, dac \(this generator is bigvgan\)"):
        family_section({"family": "bigvgan", "latent_dim": 7})
    assert family_section({"family": "bigvgan", "latent_dim": 100}) == get_family("bigvgan").config()
    with pytest.raises(ConfigError, match=r"unknown config key 'model.generator.upsample_rate'; did you mean "
                                          r"'model.generator.upsample_rates'"):
        family_section({"family": "hifigan", "upsample_rate": [8]})


def test_every_family_section_names_its_own_family_and_has_a_typed_default() -> None:
    for name in family_names():
        spec = get_family(name)
        assert spec.config().family == name
        assert all(f.type for f in dataclasses.fields(spec.config))
