"""What a worker does with purge parts, done in the test's process: every owed part, in id order."""

from consent.models import PurgePart
from consent.purging import purge_part_run


def run_owed_purges() -> list[str]:
    """Run every owed purge part here, as a worker would on its message; the outcome of each."""
    owed = PurgePart.objects.filter(status=PurgePart.Status.OWED).order_by("pk").values_list("pk", flat=True)
    return [purge_part_run(part_id=part_id) for part_id in list(owed)]
