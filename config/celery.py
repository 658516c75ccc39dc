"""The one Celery app. Queues are named for the work they do; messages carry ids, never pixels."""

import os

from celery import Celery
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
