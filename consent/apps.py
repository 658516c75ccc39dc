from django.apps import AppConfig


class ConsentConfig(AppConfig):
    name = "consent"
    verbose_name = "Consent"

    def ready(self) -> None:
        from accounts.signals import demo_seeded
        from consent.receivers import seed_demo_consent

        demo_seeded.connect(seed_demo_consent, dispatch_uid="consent.seed_demo_consent")

        from consent import tasks  # noqa: F401  (registered, so that purges can be dispatched by name)
        from consent.purgers import SUBJECT_PURGER
        from consent.purging import purger_register

        purger_register(SUBJECT_PURGER)
