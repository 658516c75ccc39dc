"""Campaigns choose what is derived from faces. New campaigns derive everything by default. Existing ones keep
deriving what their notices named before notices listed each attribute: everything but estimated gender, which
no notice had named; a marketer adds it back by publishing a notice that names it and ticking it."""

from django.db import migrations, models

HELP = "What is derived from faces (see consent.derived); the notice must name exactly these."
BEFORE_GENDER_WAS_NAMED = "face_position,head_pose,gaze,eyes,quality,expression,age"
EVERYTHING = "face_position,head_pose,gaze,eyes,quality,expression,age,gender"


class Migration(migrations.Migration):
    dependencies = [("campaigns", "0002_campaign_optional_purposes")]

    operations = [
        migrations.AddField(
            model_name="campaign",
            name="derived_attributes",
            field=models.CharField(default=BEFORE_GENDER_WAS_NAMED, help_text=HELP, max_length=200),
        ),
        migrations.AlterField(
            model_name="campaign",
            name="derived_attributes",
            field=models.CharField(default=EVERYTHING, help_text=HELP, max_length=200),
        ),
    ]
