from django.apps import AppConfig


class CampaignsConfig(AppConfig):
    name = "campaigns"
    verbose_name = "Campaigns"

    def ready(self) -> None:
        from accounts.signals import demo_seeded
        from campaigns.api import schema  # noqa: F401  (registers the condition tree's OpenAPI extension)
        from campaigns.receivers import seed_demo_campaign

        demo_seeded.connect(seed_demo_campaign, dispatch_uid="campaigns.seed_demo_campaign")
