from django.db import migrations, models


class Migration(migrations.Migration):
    """At most one current (unretired) receipt signing key per organization, so that creating the first key is
    race-safe: the loser of two concurrent creations gets an IntegrityError and reads the winner's key."""

    dependencies = [
        ("consent", "0011_ledger_subject_cut"),
    ]

    operations = [
        migrations.AddConstraint(
            model_name="signingkey",
            constraint=models.UniqueConstraint(
                condition=models.Q(("retired_at__isnull", True)),
                fields=("organization",),
                name="consent_one_current_signing_key",
            ),
        ),
    ]
