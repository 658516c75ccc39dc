"""The stored form of a random secret: API keys, capture tokens and "my data" tokens."""

import hashlib


def token_hash(token: str) -> str:
    """SHA-256 hex of a token. Every token carries 256 random bits, so a plain hash (no salt, no stretching) is
    enough, and one lookup by it is exact."""
    return hashlib.sha256(token.encode()).hexdigest()
