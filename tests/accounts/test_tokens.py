"""One stored form for every random token: rows written before the helpers were merged still match."""

import hashlib

from accounts.tokens import token_hash


def test_token_hash_is_the_sha256_hex_that_stored_rows_hold() -> None:
    token = "vcs_" + "x" * 43
    assert token_hash(token) == hashlib.sha256(token.encode()).hexdigest()
    assert len(token_hash(token)) == 64 and token_hash(token) != token_hash(token + "y")
