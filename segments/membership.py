"""The hook through which personalization rules ask about segments (`{"field": "segment", "op": "in", ...}`).

Segments themselves are not built yet: no organization has a segment, so no key is known (a rule naming one is
refused on save with the path of the node, as a segment of another organization will be) and no subject is in
any. When segment definitions and their membership land, these two functions answer from them, already
organization-scoped and consent-aware, and the callers in campaigns (rule validation, decisions) stay as they
are."""

from __future__ import annotations

from collections.abc import Iterable


def segment_keys_known(*, organization_id: int, keys: Iterable[str]) -> frozenset[str]:
    """Which of `keys` name a segment of the organization (none exist yet)."""
    return frozenset()


def subject_segment_keys(*, organization_id: int, subject_id: int) -> frozenset[str]:
    """The keys of the organization's segments the subject is a member of now (none exist yet)."""
    return frozenset()
