from django.apps import AppConfig


class CampaignsConfig(AppConfig):
    name = "campaigns"
    verbose_name = "Campaigns"

    def ready(self) -> None:
        from django.db.models.signals import post_delete, post_save

        from accounts.signals import demo_seeded
        from campaigns.api import schema  # noqa: F401  (registers the condition tree's OpenAPI extension)
        from campaigns.models import Campaign, Experiment, Rule, Variant
        from campaigns.purgers import DECISION_LOG_PURGER
        from campaigns.receivers import campaign_plan_stale, seed_demo_campaign
        from campaigns.segment_source import BEHAVIOUR_SOURCE
        from consent.purging import purger_register
        from segments.sources import behaviour_source_register

        demo_seeded.connect(seed_demo_campaign, dispatch_uid="campaigns.seed_demo_campaign")
        # A withdrawal or erasure reaches the decision log through consent's registry, not an import of campaigns.
        purger_register(DECISION_LOG_PURGER)
        # Segments' behaviour conditions read the events through their registry (segments sits below campaigns).
        behaviour_source_register(BEHAVIOUR_SOURCE)
        # Decisions keep each campaign's rules, variants and experiment in memory per version; any change makes a new
        # one (arms, phases and allocations change only through campaigns.experiments, which says so itself).
        for model in (Campaign, Rule, Variant, Experiment):
            for name, signal in (("saved", post_save), ("deleted", post_delete)):
                signal.connect(
                    campaign_plan_stale, sender=model, dispatch_uid=f"campaigns.plan_stale.{model.__name__}.{name}"
                )
