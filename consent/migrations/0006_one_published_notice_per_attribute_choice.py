"""One published notice per language, purpose set and attribute choice: campaigns that derive less from faces
offer their own, shorter text beside the others."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("consent", "0005_remove_notice_analyses_expressions")]

    operations = [
        migrations.RemoveConstraint(model_name="noticeversion", name="consent_one_published_notice_per_set"),
        migrations.AddConstraint(
            model_name="noticeversion",
            constraint=models.UniqueConstraint(
                condition=models.Q(status="published"),
                fields=("organization", "language", "purposes", "derived_attributes"),
                name="consent_one_published_notice_per_choice",
            ),
        ),
    ]
