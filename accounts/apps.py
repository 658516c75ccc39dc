from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "accounts"
    verbose_name = "Organizations and access"

    def ready(self) -> None:
        from django.db.models.signals import post_migrate

        import accounts.schema  # noqa: F401  (registers the OpenAPI extension)
        from accounts.services import role_groups_sync

        post_migrate.connect(lambda **kwargs: role_groups_sync(), dispatch_uid="accounts.role_groups_sync")
