from __future__ import annotations

from pathlib import Path

import pytest

from wms.config import ConfigError, load_settings


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ["PORT", "DATABASE_URL", "LOG_LEVEL", "WMS_DRAIN_SECONDS", "WMS_DATA_DIR",
                 "WMS_MAX_IN_FLIGHT"]:  # fmt: skip
        monkeypatch.delenv(name, raising=False)


def test_defaults_need_no_environment() -> None:
    settings = load_settings()
    assert settings.port == 8080
    assert settings.metrics_port == 9090
    assert settings.database_url is None
    assert settings.embedded
    assert settings.data_dir == Path(".wms")
    assert settings.max_in_flight == 256


def test_values_come_from_the_seed_variable_names(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PORT", "9000")
    monkeypatch.setenv("LOG_LEVEL", "DEBUG")
    monkeypatch.setenv("DATABASE_URL", "postgresql://u@db:5432/wms")
    monkeypatch.setenv("WMS_DRAIN_SECONDS", "12")
    monkeypatch.setenv("WMS_MAX_IN_FLIGHT", "0")
    settings = load_settings()
    assert settings.max_in_flight == 0
    assert (settings.port, settings.log_level, settings.drain_seconds) == (9000, "DEBUG", 12)
    assert not settings.embedded
    assert settings.migration_url == "postgresql://u@db:5432/wms"


def test_a_bad_port_is_one_line_naming_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PORT", "abc")
    with pytest.raises(ConfigError) as raised:
        load_settings()
    message = str(raised.value)
    assert message.startswith("PORT:")
    assert "'abc'" in message
    assert "\n" not in message


def test_a_database_url_error_never_echoes_the_url(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", "mysql://user:s3cret@db/wms")
    with pytest.raises(ConfigError) as raised:
        load_settings()
    assert "DATABASE_URL" in str(raised.value)
    assert "s3cret" not in str(raised.value)


def test_pool_min_above_max_is_rejected(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WMS_DB_POOL_MIN", "20")
    monkeypatch.setenv("WMS_DB_POOL_MAX", "5")
    with pytest.raises(ConfigError, match="WMS_DB_POOL_MIN"):
        load_settings()


def test_an_unknown_log_level_is_rejected(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LOG_LEVEL", "LOUD")
    with pytest.raises(ConfigError, match="LOG_LEVEL"):
        load_settings()
