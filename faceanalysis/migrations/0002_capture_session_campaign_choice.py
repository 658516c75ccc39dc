"""Capture sessions keep the campaign's choice from their start: the purposes every frame needs and the
attributes derived. Existing sessions needed face analysis only and derive what their campaigns' notices named
(everything but estimated gender, see campaigns 0003); new ones take their campaign's choice."""

from django.db import migrations, models

PURPOSES_HELP = "Purposes that must all be live for a frame to be accepted and analysed."
ATTRIBUTES_HELP = "What is derived from its frames (see consent.derived); the rest is neither computed nor kept."
BEFORE_GENDER_WAS_NAMED = "face_position,head_pose,gaze,eyes,quality,expression,age"
EVERYTHING = "face_position,head_pose,gaze,eyes,quality,expression,age,gender"


class Migration(migrations.Migration):
    dependencies = [("faceanalysis", "0001_capture_sessions_frames_features")]

    operations = [
        migrations.AddField(
            model_name="capturesession",
            name="required_purposes",
            field=models.CharField(default="face_analysis", help_text=PURPOSES_HELP, max_length=200),
        ),
        migrations.AddField(
            model_name="capturesession",
            name="derived_attributes",
            field=models.CharField(default=BEFORE_GENDER_WAS_NAMED, help_text=ATTRIBUTES_HELP, max_length=200),
        ),
        migrations.AlterField(
            model_name="capturesession",
            name="derived_attributes",
            field=models.CharField(default=EVERYTHING, help_text=ATTRIBUTES_HELP, max_length=200),
        ),
    ]
