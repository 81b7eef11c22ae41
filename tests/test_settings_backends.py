"""``[database]`` and ``[objects]`` in config.toml: the scale-out backend's
settings, with its secrets in the environment and never in the file."""

from __future__ import annotations

from pathlib import Path

import pytest

from server.settings import (
    S3_ACCESS_KEY_ENV,
    S3_SECRET_KEY_ENV,
    ConfigError,
    DatabaseConfig,
    ObjectsConfig,
    Settings,
)


def load(tmp_path: Path, config: str) -> Settings:
    (tmp_path / "config.toml").write_text(config, encoding="utf-8")
    return Settings.load(tmp_path)


def test_without_the_tables_the_embedded_backend_is_used(tmp_path: Path) -> None:
    settings = load(tmp_path, 'organisation = "X"\n')
    assert settings.database is None and settings.objects is None


def test_both_tables(tmp_path: Path) -> None:
    settings = load(
        tmp_path,
        '[database]\nurl = "postgresql://lanterne@db.internal:5432/lanterne"\npool_size = 4\n'
        '[objects]\nendpoint = "https://s3.internal:9000"\nbucket = "lanterne-ciphertext"\n',
    )
    assert settings.database == DatabaseConfig("postgresql://lanterne@db.internal:5432/lanterne", 4)
    assert settings.objects == ObjectsConfig("https://s3.internal:9000", "lanterne-ciphertext")


@pytest.mark.parametrize(
    ("table", "match"),
    [
        (
            '[database]\nurl = "postgresql://lanterne:hunter2@db/lanterne"',
            "must not hold the password",
        ),
        ('[database]\nurl = "mysql://db/lanterne"', "must look like"),
        ('[database]\nurl = "postgresql://db"', "must look like"),
        ("[database]\nurl = 5", "must be a string"),
        ('[database]\nurl = "postgresql://db/x"\npassword = "p"', "takes url and pool_size"),
        ('[database]\nurl = "postgresql://db/x"\npool_size = 0', "positive integer"),
        ('[objects]\nendpoint = "s3.internal"\nbucket = "abc"', "must be a URL"),
        ('[objects]\nendpoint = "https://k:s@s3.internal"\nbucket = "abc"', "credentials"),
        ('[objects]\nendpoint = "https://s3.internal"\nbucket = "Ab"', "bucket name"),
        ('[objects]\nendpoint = "https://s3.internal"\nbucket = "../x"', "bucket name"),
        ('[objects]\nendpoint = "https://s3.internal"\nbucket = "abc"\nsecret = "s"', "takes"),
        ('[objects]\nendpoint = "https://s3.internal"\nbucket = "abc"\naddressing = "x"', "path"),
    ],
)
def test_bad_settings_are_refused_clearly(tmp_path: Path, table: str, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        load(tmp_path, table + "\n")


def test_the_s3_credentials_come_from_the_environment(tmp_path: Path) -> None:
    objects = ObjectsConfig("https://s3.internal:9000", "lanterne")
    with pytest.raises(ConfigError, match=S3_SECRET_KEY_ENV):
        objects.location({S3_ACCESS_KEY_ENV: "key"})
    location = objects.location({S3_ACCESS_KEY_ENV: "key", S3_SECRET_KEY_ENV: "TOPSECRET"})
    assert (location.access_key_id, location.secret_access_key) == ("key", "TOPSECRET")
    assert "TOPSECRET" not in repr(location)  # never in a log line or a traceback


def test_an_embedded_instance_loads_neither_libpq_nor_boto3(tmp_path: Path) -> None:
    """docs/SCALE_OUT.md: the drivers load only when config.toml names them."""
    import subprocess
    import sys

    (tmp_path / "config.toml").write_text('organisation = "X"\n')
    code = (
        "import sys, server.web.app, server.web.journalist_api.app, server.ops.admin,"
        " server.ops.health_check, server.settings;"
        f"server.settings.Settings.load({str(tmp_path)!r});"
        "print(sorted({m.split('.')[0] for m in sys.modules}"
        " & {'psycopg', 'psycopg_pool', 'boto3', 'botocore'}))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
