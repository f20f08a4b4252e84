"""Each setting is declared once, in SETTINGS: the README's table and `--help` are made from it.

After changing SETTINGS, print the README's table anew with
    uv run python -c "from phonewagon_server.config import settings_table_markdown as t; print(t())"
"""

from __future__ import annotations

import itertools
import re
from dataclasses import fields
from pathlib import Path

import pytest
from click.testing import CliRunner

from phonewagon_server.cli import main
from phonewagon_server.config import SETTINGS, Rate, Setting, Settings, settings_table_markdown
from phonewagon_server.errors import ConfigurationError

ROOT = Path(__file__).resolve().parents[2]
VARIABLE = re.compile(r"\bPHONEWAGON_[A-Z_]+\b")


def readme_settings_table() -> str:
    section = (ROOT / "README.md").read_text().split("\n## Running the server\n", 1)[1]
    lines = itertools.dropwhile(lambda line: not line.startswith("|"), section.splitlines())
    return "".join(
        f"{line}\n" for line in itertools.takewhile(lambda line: line.startswith("|"), lines)
    )


def test_the_readme_table_is_made_from_the_settings() -> None:
    assert readme_settings_table() == settings_table_markdown()


def test_every_field_of_settings_is_a_setting_with_a_variable() -> None:
    with_variable = [setting.name for setting in SETTINGS if setting.variable]
    assert sorted(with_variable) == sorted(field.name for field in fields(Settings))
    assert all(
        setting.variable.startswith("PHONEWAGON_") for setting in SETTINGS if setting.variable
    )
    assert all(setting.flag or setting.variable for setting in SETTINGS)


def test_each_flag_is_named_after_its_setting() -> None:
    """Click passes a flag's value under the setting's name, for `Settings.from_env(flags=...)`."""
    for setting in SETTINGS:
        assert setting.flag in ("", f"--{setting.name.replace('_', '-')}")
    assert len({setting.name for setting in SETTINGS}) == len(SETTINGS)


def test_no_text_breaks_the_table() -> None:
    for setting in SETTINGS:
        for text in (setting.default, setting.help):
            assert "|" not in text
            assert "\n" not in text
            assert text.count("`") % 2 == 0


@pytest.mark.parametrize(
    "setting", [setting for setting in SETTINGS if setting.variable], ids=lambda s: s.name
)
def test_the_default_shown_is_the_default(setting: Setting) -> None:
    """Its first `literal` reads as the default of Settings; `none`, `any` mean nothing given."""
    default = getattr(Settings(), setting.name)
    literal = re.search(r"`([^`]*)`", setting.default)
    if literal is None:
        assert setting.default in ("none", "any")
        assert not default
        return
    # `http://HOST:PORT`: Settings' default is what `serve` gives with its own --host and --port.
    text = literal[1].replace("HOST", "127.0.0.1").replace("PORT", "8000")
    assert setting.parse(text, setting.variable) == default


def test_serve_help_names_every_flag_and_variable() -> None:
    done = CliRunner().invoke(main, ["serve", "--help"], terminal_width=100)
    assert done.exit_code == 0, done.output
    for setting in SETTINGS:
        assert setting.flag in done.output
        assert setting.variable in done.output


def test_settings_survive_the_trip_through_variables() -> None:
    """`serve --workers N` hands its settings to each worker as variables: none is lost."""
    changed = Settings(
        database_url="postgresql://pw@db.internal:5432/pw",
        public_url="https://api.example.com",
        rate_limit=Rate(limit=7, window=10),
        auth_failure_limit=Rate(limit=3, window=3600),
        credential_cache_seconds=0,
        redis_url="redis://127.0.0.1:6379/0",
        redis_prefix="staging",
        workers=3,
        trusted_proxies=("127.0.0.1", "10.0.0.0/8"),
        cors_origins=("https://app.example.com",),
        metrics=False,
        metrics_allow=("::1",),
        log_format="text",
    )
    for settings in (Settings(), changed):
        assert Settings.from_env(settings.as_env()) == settings


def test_a_flag_wins_over_its_variable_and_names_itself_in_errors() -> None:
    env = {"PHONEWAGON_RATE_LIMIT": "lots", "PHONEWAGON_TRUSTED_PROXIES": "proxy.internal"}
    settings = Settings.from_env(env, flags={"rate_limit": "5/minute", "trusted_proxies": "::1"})
    assert (settings.rate_limit, settings.trusted_proxies) == (Rate(5, 60), ("::1",))
    with pytest.raises(ConfigurationError, match="--trusted-proxies: 'proxy"):
        Settings.from_env({}, flags={"trusted_proxies": "proxy.internal"})
    with pytest.raises(ConfigurationError, match="PHONEWAGON_TRUSTED_PROXIES: 'proxy"):
        Settings.from_env(env, flags={"rate_limit": "5/minute"})


@pytest.mark.parametrize("path", ["deploy/phonewagon.env.example", "docs/deploy.md"])
def test_the_deployment_files_name_only_known_variables(path: str) -> None:
    known = {setting.variable for setting in SETTINGS if setting.variable}
    assert set(VARIABLE.findall((ROOT / path).read_text())) <= known
