from django.apps import AppConfig


class SegmentsConfig(AppConfig):
    name = "segments"
    verbose_name = "Segments"

    def ready(self) -> None:
        from django.db.backends.signals import connection_created

        from consent.purging import purger_register
        from segments import receivers, tasks  # noqa: F401  (tasks registered, so dispatch sends them by name)
        from segments.api import schema  # noqa: F401  (registers the strict request bodies' OpenAPI extension)
        from segments.purgers import SEGMENT_MEMBERSHIP_PURGER

        # A withdrawal or erasure reaches memberships through consent's registry, not an import of segments.
        purger_register(SEGMENT_MEMBERSHIP_PURGER)
        connection_created.connect(receivers.sqlite_median, dispatch_uid="segments.sqlite_median")
        receivers.connect()
