"""A notice's emotion-recognition statement now follows from its derived attributes (expression scores)."""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("consent", "0004_notice_names_derived_attributes")]

    operations = [migrations.RemoveField(model_name="noticeversion", name="analyses_expressions")]
