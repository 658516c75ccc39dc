"""Production settings refuse to start with a missing or malformed variable, and say which."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
GOOD = {
    "DJANGO_SECRET_KEY": "x" * 64,
    "DJANGO_ALLOWED_HOSTS": "visage.example.com",
    "DATABASE_URL": "postgres://u@127.0.0.1:5432/visage",
}


def _load_production(env: dict[str, str]) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if k not in GOOD and k != "DJANGO_SETTINGS_MODULE"}
    return subprocess.run(
        [sys.executable, "-c", "import django; django.setup()"],
        env={**clean, **env, "DJANGO_SETTINGS_MODULE": "config.settings.production"},
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_production_settings_load_with_every_variable_set() -> None:
    assert _load_production(GOOD).returncode == 0


@pytest.mark.parametrize("missing", sorted(GOOD))
def test_missing_variable_stops_start_up_naming_it(missing: str) -> None:
    result = _load_production({k: v for k, v in GOOD.items() if k != missing})
    assert result.returncode != 0
    assert missing in result.stderr


def test_malformed_database_url_stops_start_up_naming_it() -> None:
    result = _load_production({**GOOD, "DATABASE_URL": "nonsense://"})
    assert result.returncode != 0
    assert "DATABASE_URL" in result.stderr


def test_short_secret_key_is_refused() -> None:
    result = _load_production({**GOOD, "DJANGO_SECRET_KEY": "short"})
    assert result.returncode != 0
    assert "DJANGO_SECRET_KEY" in result.stderr


def test_the_embedded_sqlite_default_waits_for_the_write_lock(tmp_path: Path) -> None:
    """WAL, a busy timeout and transactions that take the write lock when they begin: racing writers wait for
    their turn instead of failing with "database is locked"."""
    probe = (
        "import django; django.setup()\n"
        "from django.db import connection\n"
        "with connection.cursor() as cursor:\n"
        "    print(cursor.execute('PRAGMA journal_mode').fetchone()[0],"
        " cursor.execute('PRAGMA busy_timeout').fetchone()[0], connection.transaction_mode)\n"
    )
    clean = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL", "DJANGO_SETTINGS_MODULE")}
    result = subprocess.run(
        [sys.executable, "-c", probe],
        env={**clean, "DJANGO_SETTINGS_MODULE": "config.settings.local",
             "DATABASE_URL": f"sqlite:///{tmp_path / 'embedded.sqlite3'}"},
        cwd=ROOT, capture_output=True, text=True, timeout=60,
    )
    assert result.returncode == 0, result.stderr
    journal, busy_timeout_ms, mode = result.stdout.split()
    assert journal == "wal" and mode == "IMMEDIATE"
    assert int(busy_timeout_ms) >= 5000
