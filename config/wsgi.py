import os

from django.core.wsgi import get_wsgi_application

from config.chunked import ChunkedBodyMiddleware

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.local")
# Chunked request bodies are read (bounded) and given a Content-Length before Django sees them.
application = ChunkedBodyMiddleware(get_wsgi_application())
