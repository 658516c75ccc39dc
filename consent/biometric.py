"""Biometric Celery tasks are consent-guarded by construction.

Wrap the task body with `consent_guarded` *under* the Celery decorator:

    @shared_task(name="faceanalysis.analyse_frame", queue="analysis", acks_late=True)
    @consent_guarded(purpose=Purpose.FACE_ANALYSIS)
    def analyse_frame(*, organization_id: int, subject_id: int, frame_id: int, grant: Grant) -> dict: ...

The message carries `organization_id` and `subject_id` (keyword arguments); the wrapper calls
`require_consent` before the body runs and hands the body the live `grant` (keyword), so every derived row
can point at it. A denied task never runs its body: `on_denied(denial, kwargs)` runs instead (drop the frame,
say) and its return value is the task's result.

`unguarded_biometric_tasks(app)` lists every task that should carry the guard and does not: tasks named
`faceanalysis.*` or routed to the `analysis` / `analysis_gpu` queues. A test runs it on the real app.
"""

import functools
import inspect
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.db import transaction

from consent.guards import ConsentDenied, require_consent

logger = logging.getLogger(__name__)

BIOMETRIC_QUEUES = frozenset({"analysis", "analysis_gpu"})
BIOMETRIC_NAME_PREFIXES = ("faceanalysis.",)
GUARD_ATTRIBUTE = "__consent_guard__"


@dataclass(frozen=True)
class GuardSpec:
    """What a guarded task needs consent for."""

    purpose: str


def _default_on_denied(denial: ConsentDenied, kwargs: dict[str, Any]) -> dict[str, str]:
    return {"status": "dropped", "reason": denial.reason.value}


def consent_guarded(
    *, purpose: str, on_denied: Callable[[ConsentDenied, dict[str, Any]], Any] | None = None,
    locked: bool = False,
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Decorate a biometric task body: `require_consent` runs first, the body gets `grant=` when allowed.

    `locked=True` runs the check and the body in one transaction, the subject held with a shared lock until
    it commits: a withdrawal waits for the body to finish, and no body starts after a withdrawal commits. The
    body then needs no check of its own for that subject.
    """

    def decorate(body: Callable[..., Any]) -> Callable[..., Any]:
        signature = inspect.signature(body)
        if "grant" not in signature.parameters:
            raise TypeError(f"{body.__qualname__} must accept a keyword argument 'grant' (the Grant that allows it).")
        for needed in ("organization_id", "subject_id"):
            if needed not in signature.parameters:
                raise TypeError(f"{body.__qualname__} must take '{needed}' so the guard can check consent.")

        def checked(args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
            bound = signature.bind_partial(*args, **kwargs).arguments
            try:
                grant = require_consent(
                    organization_id=bound.get("organization_id"),
                    subject_id=bound.get("subject_id"),
                    purpose=purpose,
                    share_lock=locked,
                )
            except ConsentDenied as denial:
                logger.info("consent guard refused %s: %s", body.__qualname__, denial.reason.value)
                return (on_denied or _default_on_denied)(denial, dict(bound))
            return body(*args, grant=grant, **kwargs)

        @functools.wraps(body)
        def guarded(*args: Any, **kwargs: Any) -> Any:
            if not locked:
                return checked(args, kwargs)
            with transaction.atomic():
                return checked(args, kwargs)

        # Celery checks call arguments against the signature; `grant` is the guard's to give, not the caller's.
        guarded.__signature__ = signature.replace(
            parameters=[p for name, p in signature.parameters.items() if name != "grant"]
        )
        setattr(guarded, GUARD_ATTRIBUTE, GuardSpec(purpose=purpose))
        return guarded

    return decorate


def guard_spec(task: Any) -> GuardSpec | None:
    """The guard a Celery task (or plain function) carries, if any."""
    run = getattr(task, "run", task)
    return getattr(run, GUARD_ATTRIBUTE, None) or getattr(task, GUARD_ATTRIBUTE, None)


def _task_queue(app: Any, task: Any) -> str | None:
    queue = getattr(task, "queue", None)
    if queue:
        return getattr(queue, "name", queue)
    route = app.amqp.router.route({}, task.name, (), {})
    queue = route.get("queue")
    return getattr(queue, "name", queue)


def is_biometric_task(app: Any, task: Any) -> bool:
    """Named `faceanalysis.*` or routed to an analysis queue."""
    return task.name.startswith(BIOMETRIC_NAME_PREFIXES) or _task_queue(app, task) in BIOMETRIC_QUEUES


def unguarded_biometric_tasks(app: Any) -> list[str]:
    """Names of the app's biometric tasks that lack the consent guard. Imports every task module first."""
    app.loader.import_default_modules()
    return sorted(name for name, task in app.tasks.items() if is_biometric_task(app, task) and guard_spec(task) is None)
