"""Tests: the environment picks the stack (DATABASE_URL, REDIS_URL); fast hashing, quiet logs."""

from config.settings.base import *  # noqa: F403

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
LOGGING["root"]["level"] = "WARNING"  # noqa: F405
LOGGING["loggers"]["django"]["level"] = "ERROR"  # noqa: F405
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = True
# Transactional tests end with a flush; the ledger's TRUNCATE trigger stays on for everything else.
VISAGE_LEDGER_FLUSH_ALLOWED = True
