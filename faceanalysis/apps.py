from django.apps import AppConfig


class FaceanalysisConfig(AppConfig):
    """Capture sessions, frame intake, the frame store, analysis tasks and derived features."""

    name = "faceanalysis"
    verbose_name = "Face analysis"

    def ready(self) -> None:
        # Listening is how consent's withdrawal reaches this app without consent importing it.
        from faceanalysis import receivers  # noqa: F401
        from faceanalysis.api import schema  # noqa: F401  (registers the OpenAPI extension)
