"""Notices record which derived attributes they name (consent.derived), so that a grant covers only those.

Existing versions: a draft will be composed from the catalogue when published, so it names everything (less
expression scores where it said no expressions are analysed). A published, superseded or retired text was
written before estimated gender was named in any notice, so it covers everything but gender (less expression
scores where it had no emotion-recognition statement).
"""

from django.db import migrations, models

CORE = ["face_position", "head_pose", "gaze", "eyes", "quality"]
EVERYTHING = ",".join([*CORE, "expression", "age", "gender"])


def backfill(apps, schema_editor):
    NoticeVersion = apps.get_model("consent", "NoticeVersion")
    for notice in NoticeVersion.objects.all().only("pk", "status", "analyses_expressions"):
        keys = [*CORE, *(["expression"] if notice.analyses_expressions else []), "age"]
        if notice.status == "draft":
            keys.append("gender")
        NoticeVersion.objects.filter(pk=notice.pk).update(derived_attributes=",".join(keys))


class Migration(migrations.Migration):
    dependencies = [("consent", "0003_replaced_access_tokens")]

    operations = [
        migrations.AddField(
            model_name="noticeversion",
            name="derived_attributes",
            field=models.CharField(
                default=EVERYTHING,
                help_text="What is derived from faces, as the notice names it (see consent.derived), comma-separated.",
                max_length=200,
            ),
        ),
        migrations.RunPython(backfill, migrations.RunPython.noop),
    ]
