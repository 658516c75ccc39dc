"""The demo prints every URL on the address it serves on (VISAGE_DEMO_ADDR), wildcards as a usable host."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command
from django.test import Client

from accounts.demo import demo_base_url

ROOT = Path(__file__).resolve().parents[2]
URL = re.compile(r"https?://[^\s\"']+")

ADDRESSES = [
    ("8123", "http://127.0.0.1:8123/"),
    ("0.0.0.0:8124", "http://127.0.0.1:8124/"),
    ("0:8125", "http://127.0.0.1:8125/"),
    ("localhost:8126", "http://localhost:8126/"),
    ("[::]:8127", "http://[::1]:8127/"),
    ("192.0.2.7:80", "http://192.0.2.7:80/"),
]


@pytest.mark.parametrize(("addr", "expected"), ADDRESSES)
def test_demo_base_url_is_the_served_address_with_wildcards_made_usable(addr: str, expected: str) -> None:
    assert demo_base_url(addr) == expected


@pytest.mark.parametrize("addr", ["", "host:", "1.2.3.4:0", "1.2.3.4:70000", "[zz]:80", "a b:80", "http://x:80"])
def test_a_malformed_demo_address_is_refused(addr: str) -> None:
    with pytest.raises(ValueError):
        demo_base_url(addr)


@pytest.mark.django_db
@pytest.mark.parametrize(("addr", "expected"), ADDRESSES[:3])
def test_seed_demo_prints_every_url_on_the_given_address(addr: str, expected: str, capsys) -> None:
    call_command("seed_demo", addr=addr)
    out = capsys.readouterr().out
    urls = URL.findall(out)
    assert len(urls) >= 3, out  # admin, API, consent page
    assert all(url.startswith(expected) for url in urls), out
    consent_page = next(url for url in urls if "/c/" in url)
    assert Client().get(consent_page.removeprefix(expected.rstrip("/"))).status_code == 200


@pytest.mark.django_db
def test_seed_demo_reads_visage_demo_addr_and_refuses_a_bad_one(monkeypatch, capsys) -> None:
    monkeypatch.setenv("VISAGE_DEMO_ADDR", "0.0.0.0:8131")
    call_command("seed_demo")
    assert all(url.startswith("http://127.0.0.1:8131/") for url in URL.findall(capsys.readouterr().out))
    with pytest.raises(CommandError, match="VISAGE_DEMO_ADDR"):
        call_command("seed_demo", addr="nonsense:port")


def test_scripts_demo_prints_the_served_address_everywhere(tmp_path: Path) -> None:
    """scripts/demo itself, in a copy whose bootstrap does nothing and whose runserver only says where it
    would serve: migrate and seed_demo run for real on a fresh SQLite file."""
    (tmp_path / "scripts").mkdir()
    shutil.copy(ROOT / "scripts" / "demo", tmp_path / "scripts" / "demo")
    (tmp_path / "scripts" / "bootstrap").write_text("#!/usr/bin/env bash\n")
    (tmp_path / "manage.py").symlink_to(ROOT / "manage.py")
    (tmp_path / ".venv" / "bin").mkdir(parents=True)
    python = tmp_path / ".venv" / "bin" / "python"
    python.write_text(
        "#!/usr/bin/env bash\n"
        'if [ "${2:-}" = runserver ]; then echo "runserver would serve on $3"; exit 0; fi\n'
        f'exec {sys.executable} "$@"\n'
    )
    for script in (tmp_path / "scripts" / "demo", tmp_path / "scripts" / "bootstrap", python):
        script.chmod(0o755)
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL", "DJANGO_SETTINGS_MODULE")}
    env.update(
        VISAGE_DEMO_ADDR="0.0.0.0:8142", PYTHONPATH=str(ROOT),
        DATABASE_URL=f"sqlite:///{tmp_path / 'demo.sqlite3'}",
    )
    result = subprocess.run(
        [tmp_path / "scripts" / "demo"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=240
    )
    assert result.returncode == 0, result.stderr[-3000:]
    urls = URL.findall(result.stdout)
    assert len(urls) >= 4, result.stdout  # admin, API, consent page, where it serves
    assert all(url.startswith("http://127.0.0.1:8142/") for url in urls), result.stdout
    assert "runserver would serve on 0.0.0.0:8142" in result.stdout
