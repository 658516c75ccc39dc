"""What face analysis tells the apps above it, as signals they connect to (it may not import them)."""

from django.dispatch import Signal

# Sent after a subject's session aggregates were recounted (new features written), with organization_id and
# subject_id: segments brings that subject up to date.
subject_features_changed = Signal()
