"""Capture sessions keep the campaign's choice from their start: the purposes every frame needs and the
attributes derived. Existing sessions needed face analysis only and derived everything, as before."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("faceanalysis", "0001_capture_sessions_frames_features")]

    operations = [
        migrations.AddField(
            model_name="capturesession",
            name="required_purposes",
            field=models.CharField(
                default="face_analysis",
                help_text="Purposes that must all be live for a frame to be accepted and analysed.",
                max_length=200,
            ),
        ),
        migrations.AddField(
            model_name="capturesession",
            name="derived_attributes",
            field=models.CharField(
                default="face_position,head_pose,gaze,eyes,quality,expression,age,gender",
                help_text="What is derived from its frames (see consent.derived); the rest is neither computed nor kept.",
                max_length=200,
            ),
        ),
    ]
