"""`manage.py consent_receipt_verify FILE [--jwks FILE_OR_URL]` on real files: a downloaded receipt verifies; a
changed one, one checked with another key or another organization's keys does not; unreadable input is exit 2.

With --jwks the command runs as a real process (it needs no database); without, it reads the database's
published keys, so it is called in-process on the test database."""

import base64
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.management import call_command
from joserfc.jwk import OKPKey

from consent import receipts
from tests.factories import make_grant, make_notice, make_organization, make_subject

pytestmark = [pytest.mark.django_db, pytest.mark.filterwarnings("ignore:EdDSA is deprecated")]

ROOT = Path(__file__).resolve().parents[2]


def _receipt_file(tmp_path: Path, organization, name: str = "consent-receipt.jws") -> tuple[Path, object]:
    grant = make_grant(make_subject(organization), make_notice(organization), channel="consent_page")
    path = tmp_path / name
    path.write_text(receipts.receipt_sign(grant))
    return path, grant


def _jwks_file(tmp_path: Path, organization, name: str = "jwks.json") -> Path:
    path = tmp_path / name
    path.write_text(json.dumps(receipts.receipt_jwks(organization)))
    return path


def _run(*args: str) -> subprocess.CompletedProcess:
    """The command as a separate process, as a third party runs it (no database needed with --jwks)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "DJANGO_SETTINGS_MODULE": "config.settings.test"}
    return subprocess.run([sys.executable, str(ROOT / "manage.py"), "consent_receipt_verify", *args],
                          capture_output=True, text=True, env=env, timeout=120, cwd=ROOT)


def _call(*args: str, capsys) -> tuple[int, str, str]:
    """The command in-process (default keys: the test database's); its exit code and output."""
    try:
        call_command("consent_receipt_verify", *args)
        code = 0
    except SystemExit as exit_:
        code = int(exit_.code or 0)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def _changed(path: Path, tmp_path: Path, **claims) -> Path:
    head, payload, signature = path.read_text().split(".")
    body = {**json.loads(base64.urlsafe_b64decode(payload + "==")), **claims}
    changed = tmp_path / "changed.jws"
    changed.write_text(f"{head}.{base64.urlsafe_b64encode(json.dumps(body).encode()).rstrip(b'=').decode()}.{signature}")
    return changed


def test_a_receipt_file_verifies_against_the_published_keys(tmp_path, org_a, capsys) -> None:
    path, grant = _receipt_file(tmp_path, org_a)
    code, out, _ = _call(str(path), capsys=capsys)
    assert code == 0 and out.strip().endswith("valid")
    assert str(grant.subject.public_id) in out and receipts.receipt_id(grant) in out
    assert "Face analysis" in out and org_a.slug in out and "active at signing" in out


def test_a_receipt_file_verifies_against_a_jwks_file_in_a_separate_process(tmp_path, org_a) -> None:
    path, grant = _receipt_file(tmp_path, org_a)
    run = _run(str(path), "--jwks", str(_jwks_file(tmp_path, org_a)))
    assert run.returncode == 0, run.stdout + run.stderr
    assert run.stdout.strip().splitlines()[-1] == "valid"
    assert receipts.receipt_id(grant) in run.stdout


def test_a_changed_receipt_is_invalid(tmp_path, org_a, capsys) -> None:
    path, _ = _receipt_file(tmp_path, org_a)
    changed = _changed(path, tmp_path, grantState="active", piiPrincipalId="someone-else")
    code, out, _ = _call(str(changed), capsys=capsys)
    assert code == 1 and "invalid (bad_signature)" in out and "valid\n" not in out
    run = _run(str(changed), "--jwks", str(_jwks_file(tmp_path, org_a)))
    assert run.returncode == 1 and "invalid (bad_signature)" in run.stdout


def test_a_receipt_checked_with_another_key_under_its_kid_is_invalid(tmp_path, org_a) -> None:
    path, _ = _receipt_file(tmp_path, org_a)
    kid = receipts.signing_key_current(org_a).kid
    impostor = OKPKey.generate_key("Ed25519").as_dict(private=False)
    wrong = tmp_path / "wrong.json"
    wrong.write_text(json.dumps({"keys": [{**impostor, "kid": kid, "use": "sig", "alg": "EdDSA"}]}))
    run = _run(str(path), "--jwks", str(wrong))
    assert run.returncode == 1 and "invalid (bad_signature)" in run.stdout


def test_a_receipt_of_b_is_unknown_to_the_keys_of_a(tmp_path, org_a, capsys) -> None:
    org_b = make_organization(name="Org B")
    receipts.signing_key_current(org_a)
    path, _ = _receipt_file(tmp_path, org_b)
    run = _run(str(path), "--jwks", str(_jwks_file(tmp_path, org_a)))
    assert run.returncode == 1 and "invalid (unknown_kid)" in run.stdout
    # Claiming to be A's changes what was signed, and A publishes no key of B.
    code, out, _ = _call(str(_changed(path, tmp_path, organization=org_a.slug)), capsys=capsys)
    assert code == 1 and "invalid (unknown_kid)" in out


def test_a_receipt_signed_before_a_rotation_still_verifies(tmp_path, org_a, capsys) -> None:
    path, _ = _receipt_file(tmp_path, org_a)
    receipts.signing_key_rotate(org_a)
    assert _call(str(path), capsys=capsys)[0] == 0
    assert _run(str(path), "--jwks", str(_jwks_file(tmp_path, org_a))).returncode == 0


def test_a_file_that_is_not_a_receipt_is_invalid(tmp_path, org_a, capsys) -> None:
    garbage = tmp_path / "garbage.jws"
    garbage.write_text("this is not a receipt")
    code, out, _ = _call(str(garbage), capsys=capsys)
    assert code == 1 and "invalid (malformed)" in out


@pytest.mark.parametrize("case", ["missing_file", "missing_jwks", "jwks_not_json", "jwks_with_private_key"])
def test_unreadable_input_exits_2(case, tmp_path, org_a) -> None:
    path, _ = _receipt_file(tmp_path, org_a)
    jwks = _jwks_file(tmp_path, org_a)
    if case == "missing_file":
        path = tmp_path / "nowhere.jws"
    elif case == "missing_jwks":
        jwks = tmp_path / "nowhere.json"
    elif case == "jwks_not_json":
        jwks.write_text("{not json")
    else:
        jwks.write_text(json.dumps({"keys": [OKPKey.generate_key("Ed25519").as_dict(private=True, kid="k")]}))
    run = _run(str(path), "--jwks", str(jwks))
    assert run.returncode == 2, run.stdout + run.stderr
    assert "unreadable" in run.stderr and "Traceback" not in run.stderr


def test_no_file_argument_exits_2() -> None:
    run = _run()
    assert run.returncode == 2 and "Traceback" not in run.stderr
