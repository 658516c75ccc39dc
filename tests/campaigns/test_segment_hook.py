"""Rules reach segments only through segments.membership: with no segments built, every key is refused on save
(with the node's path); with a membership answering (a fake here, named as one), the same rule saves and fires
for its members only."""

from __future__ import annotations

import pytest

from campaigns import content, decisions
from campaigns.decisions import decision_make
from campaigns.models import Campaign
from consent.services import subject_create
from segments import membership
from tests.campaigns.test_decisions import attrs
from tests.factories import make_campaign, make_variant

pytestmark = pytest.mark.django_db

VIP_RULE = {
    "name": "VIPs", "variant": "vip", "condition": {"any": [{"field": "segment", "op": "in", "value": ["vip"]}]},
}


def _campaign(org) -> Campaign:
    campaign = make_campaign(org)
    make_variant(campaign, key="standard", default=True)
    make_variant(campaign, key="vip")
    return campaign


def test_a_segment_rule_is_refused_while_no_segment_exists(org_a) -> None:
    campaign = _campaign(org_a)
    assert membership.segment_keys_known(organization_id=org_a.pk, keys=["vip"]) == frozenset()
    with pytest.raises(content.ContentError) as refused:
        content.rule_save(campaign=campaign, rule=None, data=VIP_RULE)
    assert refused.value.path == "condition.any[0].value[0]"
    assert not campaign.rules.exists()


def test_a_segment_rule_saves_and_fires_for_members_once_membership_answers(org_a, org_b, monkeypatch) -> None:
    campaign = _campaign(org_a)
    member, other = subject_create(organization=org_a), subject_create(organization=org_a)
    # A fake membership where the hook is used: org_a has the segment "vip" and `member` is in it.
    monkeypatch.setattr(content, "segment_keys_known",
                        lambda *, organization_id, keys: frozenset(k for k in keys if organization_id == org_a.pk))
    monkeypatch.setattr(decisions, "subject_segment_keys",
                        lambda *, organization_id, subject_id: frozenset({"vip"} if subject_id == member.pk else ()))
    content.rule_save(campaign=campaign, rule=None, data=VIP_RULE)
    chosen = {
        name: decision_make(campaign=campaign, visitor_id=f"visitor-{name}-000000000", subject=subject,
                            attributes=attrs(), channel="api").variant.key
        for name, subject in (("member", member), ("other", other), ("anonymous", None))
    }
    assert chosen == {"member": "vip", "other": "standard", "anonymous": "standard"}
    with pytest.raises(content.ContentError):  # another organization's campaign knows no such segment
        content.rule_save(campaign=_campaign(org_b), rule=None, data=VIP_RULE)
