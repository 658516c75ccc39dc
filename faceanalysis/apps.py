from django.apps import AppConfig


class FaceanalysisConfig(AppConfig):
    """Capture sessions, frame intake, the frame store, analysis tasks and derived features."""

    name = "faceanalysis"
    verbose_name = "Face analysis"

    def ready(self) -> None:
        # Registering its purger is how a withdrawal reaches this app without consent importing it. The tasks
        # are registered in every process, web included: dispatch finds them by name, never by import.
        from consent.purging import purger_register
        from faceanalysis import tasks  # noqa: F401
        from faceanalysis.purgers import FACE_DATA_PURGER

        purger_register(FACE_DATA_PURGER)
        from faceanalysis.api import schema  # noqa: F401  (registers the OpenAPI extension)
