"""Settings: defaults < TOML file < VESALIUS_* environment < explicit overrides."""

from __future__ import annotations

from pathlib import Path

import pytest

from vesalius.config import load_settings
from vesalius.core.errors import InvalidInput


def test_defaults() -> None:
    settings = load_settings(environ={})
    assert settings.http_port == 8080 and settings.ae_title == "VESALIUS"
    assert settings.resolved_database_url.startswith("sqlite:///")


def test_precedence(tmp_path: Path) -> None:
    config = tmp_path / "v.toml"
    config.write_text('[vesalius]\nhttp_port = 9000\nae_title = "FILE"\n'
                      'extra_indexed_tags = ["BodyPartExamined"]\n')
    env = {"VESALIUS_AE_TITLE": "ENV", "VESALIUS_DATA_DIR": str(tmp_path / "d")}
    settings = load_settings(config, environ=env, http_port=9100)
    assert settings.http_port == 9100
    assert settings.ae_title == "ENV"
    assert settings.data_dir == tmp_path / "d"
    assert settings.extra_indexed_tags == ("BodyPartExamined",)


def test_config_path_from_environment(tmp_path: Path) -> None:
    config = tmp_path / "v.toml"
    config.write_text("load_demo = true\n")
    assert load_settings(environ={"VESALIUS_CONFIG": str(config)}).load_demo is True


@pytest.mark.parametrize("text", ["bogus = 1\n", "http_port = 'x'\n", "[[[\n",
                                  "duplicate_policy = 'keep-both'\n"])
def test_bad_configuration_is_a_clear_error(tmp_path: Path, text: str) -> None:
    config = tmp_path / "v.toml"
    config.write_text(text)
    with pytest.raises(InvalidInput):
        load_settings(config, environ={})


def test_missing_file_and_bad_env() -> None:
    with pytest.raises(InvalidInput, match="does not exist"):
        load_settings(Path("/nonexistent/v.toml"), environ={})
    with pytest.raises(InvalidInput):
        load_settings(environ={"VESALIUS_LOAD_DEMO": "maybe"})
