"""Fixtures for campaign page tests, including the headless browser."""

from tests.browser_support import ledger_flushable  # noqa: F401  (a fixture)
