from celery import shared_task
from django.db import connection


@shared_task(name="accounts.ping", acks_late=True, time_limit=10, soft_time_limit=8)
def ping() -> dict[str, str]:
    """Answers from a worker with its database vendor: proves broker, worker and database are wired."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    return {"status": "pong", "database": connection.vendor}
