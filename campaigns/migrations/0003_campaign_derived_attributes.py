"""Campaigns choose what is derived from faces; existing ones keep deriving everything, as before."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("campaigns", "0002_campaign_optional_purposes")]

    operations = [
        migrations.AddField(
            model_name="campaign",
            name="derived_attributes",
            field=models.CharField(
                default="face_position,head_pose,gaze,eyes,quality,expression,age,gender",
                help_text="What is derived from faces (see consent.derived); the notice must name exactly these.",
                max_length=200,
            ),
        ),
    ]
