from django.apps import AppConfig


class FaceanalysisConfig(AppConfig):
    """Capture sessions, frame intake, the frame store, analysis tasks and derived features."""

    name = "faceanalysis"
    verbose_name = "Face analysis"

    def ready(self) -> None:
        # Registering its purger is how a withdrawal reaches this app without consent importing it.
        from consent.purging import purger_register
        from faceanalysis.purgers import FACE_DATA_PURGER

        purger_register(FACE_DATA_PURGER)
        from faceanalysis.api import schema  # noqa: F401  (registers the OpenAPI extension)
