"""Consent in the admin: drafts edited and published explicitly, evidence read-only, tenants kept apart,
the chain verified and the funnel counted."""

import pytest
from django.test import Client
from django.utils import timezone

from consent.models import Grant, LedgerEntry, NoticeVersion, Subject
from consent.services import consent_give_on_page, consent_refuse, consent_shown, consent_withdraw, notice_retire
from tests.factories import (
    campaign_admin_form,
    make_campaign,
    make_grant,
    make_member,
    make_notice,
    make_retention_policy,
    make_subject,
)

pytestmark = pytest.mark.django_db


def _client(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_marketer_writes_a_draft_and_publishes_it_explicitly(org_a) -> None:
    make_retention_policy(org_a)
    client = _client(make_member(org_a, role="marketer"))
    response = client.post(
        "/admin/consent/noticeversion/add/",
        {
            "language": "de",
            "purpose_choices": ["face_analysis", "personalization"],
            "controller_name": "Shop GmbH",
            "controller_contact": "datenschutz@shop.test",
            "recipients": "",
            "introduction": "Hallo.",
            "attribute_choices": ["expression", "age", "gender"],
        },
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    draft = NoticeVersion.objects.get()
    assert draft.organization == org_a and draft.status == "draft" and draft.purposes == "face_analysis,personalization"
    page = client.get(f"/admin/consent/noticeversion/{draft.pk}/change/").content.decode()
    assert "Verantwortlicher: Shop GmbH" in page  # the preview, in the notice's language
    client.post(
        "/admin/consent/noticeversion/",
        {"action": "publish_selected", "_selected_action": [draft.pk]},
    )
    draft.refresh_from_db()
    assert draft.status == "published" and len(draft.text_hash) == 64 and "Hallo." in draft.text


def test_published_notice_cannot_be_edited_or_deleted_in_the_admin(org_a) -> None:
    notice = make_notice(org_a)
    client = _client(make_member(org_a, role="owner"))
    page = client.get(f"/admin/consent/noticeversion/{notice.pk}/change/").content.decode()
    assert 'name="controller_name"' not in page and notice.text_hash in page
    client.post(f"/admin/consent/noticeversion/{notice.pk}/change/", {"controller_name": "Forged"})
    assert client.post(f"/admin/consent/noticeversion/{notice.pk}/delete/", {"post": "yes"}).status_code == 403
    notice.refresh_from_db()
    assert notice.controller_name != "Forged" and notice.status == "published"


def test_retire_action_makes_the_guard_refuse(org_a) -> None:
    from consent.guards import has_consent

    notice = make_notice(org_a)
    subject = make_subject(org_a)
    make_grant(subject, notice)
    client = _client(make_member(org_a, role="marketer"))
    client.post("/admin/consent/noticeversion/", {"action": "retire_selected", "_selected_action": [notice.pk]})
    assert not has_consent(organization_id=org_a.pk, subject_id=subject.pk, purpose="face_analysis")


def test_grants_and_ledger_are_read_only_and_scoped(org_a, org_b) -> None:
    mine = make_grant(make_subject(org_a), make_notice(org_a))
    theirs = make_grant(make_subject(org_b), make_notice(org_b))
    client = _client(make_member(org_a, role="owner"))
    grants = client.get("/admin/consent/grant/").content.decode()
    assert str(mine.subject.public_id) in grants and str(theirs.subject.public_id) not in grants
    assert client.get(f"/admin/consent/grant/{mine.pk}/change/").status_code == 200  # view only
    assert client.post(f"/admin/consent/grant/{mine.pk}/delete/", {"post": "yes"}).status_code == 403
    assert client.get("/admin/consent/ledgerentry/add/").status_code == 403
    ledger = client.get("/admin/consent/ledgerentry/?event=granted&purpose=face_analysis").content.decode()
    assert mine.notice_hash[:12] in ledger and theirs.notice_hash[:12] not in ledger
    assert Grant.objects.count() == 2


def test_grant_filters_by_purpose_and_state(org_a) -> None:
    notice = make_notice(org_a, purposes=("face_analysis", "personalization"))
    subject = make_subject(org_a)
    make_grant(subject, notice)
    consent_withdraw(organization=org_a, subject=subject, purposes=["personalization"], channel="partner_api")
    client = _client(make_member(org_a, role="owner"))
    active = client.get("/admin/consent/grant/?state=active").context["cl"].queryset
    withdrawn = client.get("/admin/consent/grant/?state=withdrawn&purpose=personalization").context["cl"].queryset
    assert [g.purpose for g in active] == ["face_analysis"]
    assert [g.purpose for g in withdrawn] == ["personalization"]


def test_verify_view_reports_intact_chain_for_the_members_organization_only(org_a, org_b) -> None:
    make_grant(make_subject(org_a), make_notice(org_a))
    make_grant(make_subject(org_b), make_notice(org_b))
    page = _client(make_member(org_a, role="analyst")).get("/admin/consent/ledgerentry/verify/").content.decode()
    assert "Intact" in page and org_a.name in page and org_b.name not in page


def test_funnel_counts_per_campaign_and_notice_version(org_a) -> None:
    notice = make_notice(org_a)
    campaign = make_campaign(org_a)
    ref = campaign.context_ref
    for _ in range(3):
        consent_shown(organization=org_a, notice=notice, channel="consent_page", context_ref=ref)
    consent_refuse(
        organization=org_a, notice=notice, purposes=["face_analysis"], channel="consent_page", context_ref=ref
    )
    subject, _ = consent_give_on_page(
        organization=org_a,
        notice=notice,
        purposes=["face_analysis"],
        offered_purposes=["face_analysis"],
        context_ref=ref,
    )
    consent_withdraw(organization=org_a, subject=subject, channel="my_data_page")
    response = _client(make_member(org_a, role="marketer")).get("/admin/consent/ledgerentry/funnel/")
    ((organization, rows),) = response.context["funnels"]
    assert [(r.context_ref, r.notice_hash, r.shown, r.granted, r.refused, r.withdrawn) for r in rows] == [
        (ref, notice.text_hash, 3, 1, 1, 1)
    ]
    assert LedgerEntry.objects.count() == 6


def test_paper_consent_is_recorded_with_its_reference(org_a) -> None:
    notice = make_notice(org_a)
    subject = make_subject(org_a)
    client = _client(make_member(org_a, role="marketer"))
    response = client.post(
        "/admin/consent/grant/paper/",
        {
            "subject_id": str(subject.public_id),
            "notice": notice.pk,
            "purposes": ["face_analysis"],
            "paper_reference": "folder 7, sheet 12",
        },
    )
    assert response.status_code == 302
    grant = Grant.objects.get()
    assert grant.channel == "admin_paper" and grant.evidence["paper_reference"] == "folder 7, sheet 12"


def test_campaign_admin_declares_purposes_and_links_the_consent_page(org_a) -> None:
    make_notice(org_a, purposes=("face_analysis", "personalization"))  # an active campaign must be ready
    client = _client(make_member(org_a, role="marketer"))
    response = client.post(
        "/admin/campaigns/campaign/add/",
        campaign_admin_form(name="Spring", status="running", purpose_choices=["face_analysis", "personalization"],
                            attribute_choices=["expression", "age", "gender"]),
    )
    assert response.status_code == 302
    from campaigns.models import Campaign

    campaign = Campaign.objects.get()
    assert campaign.organization == org_a and campaign.purpose_list == ["face_analysis", "personalization"]
    page = client.get(f"/admin/campaigns/campaign/{campaign.pk}/change/").content.decode()
    assert f"/c/{campaign.public_id}/" in page


def test_verify_view_points_at_the_first_tampered_row(org_a) -> None:
    from tests.consent.test_ledger import _triggers_bypassed

    make_grant(make_subject(org_a), make_notice(org_a))
    entry = LedgerEntry.objects.get(event="granted")
    with _triggers_bypassed() as cursor:
        cursor.execute("UPDATE consent_ledgerentry SET channel = 'admin_paper' WHERE id = %s", [entry.pk])
    page = _client(make_member(org_a, role="owner")).get("/admin/consent/ledgerentry/verify/").content.decode()
    assert f"Broken at sequence {entry.sequence}" in page and f"/admin/consent/ledgerentry/{entry.pk}/change/" in page


def test_changing_the_retention_policy_warns_about_notices_stating_the_old_one(org_a) -> None:
    make_notice(org_a)
    from consent.models import RetentionPolicy

    policy = RetentionPolicy.objects.get(organization=org_a)
    client = _client(make_member(org_a, role="owner"))
    response = client.post(
        f"/admin/consent/retentionpolicy/{policy.pk}/change/",
        {"feature_retention_days": 30, "grant_validity_days": 90},
        follow=True,
    )
    assert "still state the previous schedule" in response.content.decode()


def test_a_draft_without_a_purpose_is_a_form_error_not_a_crash(org_a) -> None:
    make_retention_policy(org_a)
    client = _client(make_member(org_a, role="marketer"))
    response = client.post(
        "/admin/consent/noticeversion/add/",
        {"language": "en", "controller_name": "Shop GmbH", "controller_contact": "privacy@shop.test",
         "recipients": "", "introduction": ""},
    )
    assert response.status_code == 200
    assert "purpose_choices" in response.context["adminform"].form.errors
    assert not NoticeVersion.objects.exists()


def test_grant_column_and_filter_say_active_only_where_the_guard_does(org_a) -> None:
    retired_notice = make_notice(org_a, purposes=("face_analysis", "personalization"))
    under_retired, erased, live = (make_subject(org_a) for _ in range(3))
    make_grant(under_retired, retired_notice)
    notice_retire(notice=retired_notice)
    notice = make_notice(org_a, purposes=("face_analysis", "personalization"))
    make_grant(erased, notice)
    Subject.objects.filter(pk=erased.pk).update(erased_at=timezone.now())
    make_grant(live, notice, purposes=("face_analysis",))
    client = _client(make_member(org_a, role="owner"))

    def listed(query: str = "") -> dict[tuple[int, str], str]:
        changelist = client.get(f"/admin/consent/grant/{query}").context["cl"]
        return {(g.subject_id, g.purpose): changelist.model_admin.state_display(g) for g in changelist.queryset}

    assert listed() == {
        (under_retired.pk, "face_analysis"): "notice_retired", (under_retired.pk, "personalization"): "notice_retired",
        (erased.pk, "face_analysis"): "subject_erased", (erased.pk, "personalization"): "subject_erased",
        (live.pk, "face_analysis"): "active",
    }
    assert listed("?state=active") == {(live.pk, "face_analysis"): "active"}
    assert set(listed("?state=notice_retired")) == {(under_retired.pk, "face_analysis"),
                                                    (under_retired.pk, "personalization")}
    assert set(listed("?state=subject_erased")) == {(erased.pk, "face_analysis"), (erased.pk, "personalization")}
