"""The one Celery app. Queues are named for the work they do; messages carry ids, never pixels."""

import os

from celery import Celery
from celery.signals import task_postrun, task_prerun
from kombu import Queue

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.local")

app = Celery("visage")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.conf.task_queues = [
    Queue("default"),
    Queue("analysis"),  # CPU face analysis
    Queue("analysis_gpu"),  # batched face analysis on a GPU worker
]
app.autodiscover_tasks()


@task_prerun.connect
@task_postrun.connect
def close_old_database_connections(sender=None, **kwargs) -> None:
    """Between tasks, what Django does between requests: close a connection past CONN_MAX_AGE or left unusable
    by an error (CELERY_DB_REUSE_MAX keeps Celery from closing every one). Never inside an eager task, which
    runs in its caller's transaction."""
    if sender is None or getattr(sender.request, "is_eager", False):
        return
    from django.db import close_old_connections

    close_old_connections()

