"""Rules reach segments only through segments.membership: with no segments built, every key is refused on save
(with the node's path); with a segment, the same rule saves and fires for its members only, and a campaign
that forbids emotion recognition cannot name a segment built on smiles or expressions."""

from __future__ import annotations

import pytest

from campaigns import content
from campaigns.decisions import decision_make
from campaigns.models import Campaign
from segments import membership
from segments.models import Segment
from segments.services import segment_save, segment_upload
from tests.campaigns.test_decisions import attrs
from tests.factories import make_campaign, make_subject, make_variant

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


def test_a_segment_rule_saves_and_fires_for_members_of_a_real_segment(org_a, org_b) -> None:
    campaign = _campaign(org_a)
    member, other = make_subject(org_a, partner_user_id="crm-1"), make_subject(org_a, partner_user_id="crm-2")
    vip = segment_save(organization=org_a, key="vip", name="VIP", kind=Segment.Kind.STATIC)
    segment_upload(segment=vip, text="crm-1\n")
    content.rule_save(campaign=campaign, rule=None, data=VIP_RULE)
    chosen = {
        name: decision_make(campaign=campaign, visitor_id=f"visitor-{name}-000000000", subject=subject,
                            attributes=attrs(), channel="api").variant.key
        for name, subject in (("member", member), ("other", other), ("anonymous", None))
    }
    assert chosen == {"member": "vip", "other": "standard", "anonymous": "standard"}
    with pytest.raises(content.ContentError):  # another organization's campaign knows no such segment
        content.rule_save(campaign=_campaign(org_b), rule=None, data=VIP_RULE)


def test_a_campaign_that_forbids_emotion_recognition_cannot_target_a_smile_segment(org_a) -> None:
    smilers = {"field": "face.smile_share", "op": "gte", "value": 0.5}
    segment_save(organization=org_a, key="smilers", name="Smilers", definition=smilers)
    segment_save(organization=org_a, key="vip", name="Via smilers",
                 definition={"field": "segment", "op": "in", "value": ["smilers"]})
    campaign = _campaign(org_a)
    Campaign.objects.filter(pk=campaign.pk).update(setting_of_use=Campaign.SettingOfUse.WORKPLACE)
    campaign.refresh_from_db()
    with pytest.raises(content.ContentError) as refused:  # through another segment too
        content.rule_save(campaign=campaign, rule=None, data=VIP_RULE)
    assert refused.value.path == "condition.any[0].value[0]"
