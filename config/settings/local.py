"""Developer machine: the embedded default with DEBUG on."""

from config.settings.base import *  # noqa: F403
from config.settings.base import env

DEBUG = env.bool("DJANGO_DEBUG", default=True)
WHITENOISE_USE_FINDERS = DEBUG
WHITENOISE_AUTOREFRESH = DEBUG
VISAGE_LEDGER_FLUSH_ALLOWED = env.bool("VISAGE_LEDGER_FLUSH_ALLOWED", default=DEBUG)
