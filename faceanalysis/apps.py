from django.apps import AppConfig


class FaceanalysisConfig(AppConfig):
    name = "faceanalysis"
