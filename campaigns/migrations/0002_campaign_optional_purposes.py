"""Campaigns say which purposes are optional extras beside those the camera needs. Existing campaigns keep every
purpose they declared as needed: that is what their marketers chose, and the camera now enforces it."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("campaigns", "0001_campaign")]

    operations = [
        migrations.AlterField(
            model_name="campaign",
            name="required_purposes",
            field=models.CharField(
                help_text="Consent purposes the camera needs, every one of them, comma-separated (see consent.Purpose).",
                max_length=200,
            ),
        ),
        migrations.AddField(
            model_name="campaign",
            name="optional_purposes",
            field=models.CharField(
                blank=True,
                default="",
                help_text="Consent purposes offered as extras: the camera works without them, comma-separated.",
                max_length=200,
            ),
        ),
    ]
