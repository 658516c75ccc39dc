"""The cross-tenant matrix: every /api/v1/ endpoint is listed here, and a key of organization A must
never read, list or change a row of organization B through it. A new endpoint that is not listed
fails `test_every_api_endpoint_is_in_the_tenant_matrix`.

Each maker takes organization B and returns (url kwargs, marker): the kwargs address B's object, and
the marker is a string that must never appear in anything A receives.
"""

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from accounts.models import Organization
from tests.factories import make_api_key

Maker = Callable[[Organization], tuple[dict[str, Any], str]]


@dataclass(frozen=True)
class TenantEndpoint:
    url_name: str
    methods: tuple[str, ...]
    make_foreign: Maker
    body: dict[str, Any] = field(default_factory=dict)
    # Scopes the calls need beyond read and write (`export`, which nothing implies): both sides' keys get them,
    # so a 404 is isolation and not a missing scope's 403.
    scopes: tuple[str, ...] = ()


def _foreign_key(org: Organization) -> tuple[dict[str, Any], str]:
    api_key, _ = make_api_key(org)
    return {"prefix": api_key.prefix}, api_key.prefix


def _foreign_key_listed(org: Organization) -> tuple[dict[str, Any], str]:
    api_key, _ = make_api_key(org)
    return {}, api_key.prefix


def _foreign_subject(org: Organization) -> tuple[dict[str, Any], str]:
    """A subject of B with a live grant, so that withdraw and history have something to leak."""
    from tests.factories import make_grant, make_notice, make_subject

    subject = make_subject(org, partner_user_id="shared-user-id")
    notice = make_notice(org)
    make_grant(subject, notice)
    # The grant body must name B's own notice for B's call to succeed; the maker fills it in.
    _grant_body.update(purposes=["face_analysis"], notice_hash=notice.text_hash, language=notice.language)
    return {"subject_id": str(subject.public_id)}, str(subject.public_id)


def _foreign_notice_listed(org: Organization) -> tuple[dict[str, Any], str]:
    from tests.factories import make_notice

    return {}, make_notice(org).text_hash


def _foreign_subject_listed(org: Organization) -> tuple[dict[str, Any], str]:
    kwargs, marker = _foreign_subject(org)
    return {}, marker


_grant_body: dict[str, Any] = {}


def _foreign_data_request(kind: str) -> Maker:
    """A data subject request of B's subject (an export, or an access)."""

    def make(org: Organization) -> tuple[dict[str, Any], str]:
        from consent.data_requests import data_request_create
        from consent.models import Subject

        _, public_id = _foreign_subject(org)
        outcome = data_request_create(organization=org, subject=Subject.objects.get(public_id=public_id), kind=kind,
                                      channel="partner_api", requested_by="tenancy")
        return {"request_id": str(outcome.request.public_id)}, str(outcome.request.public_id)

    return make

# Endpoints that address one object: A gets the same 404 as for an object that does not exist.
OBJECT_ENDPOINTS: list[TenantEndpoint] = [
    TenantEndpoint("api:key-detail", ("get",), _foreign_key),
    TenantEndpoint("api:key-revoke", ("post",), _foreign_key),
    TenantEndpoint("api:consent-subject-detail", ("get",), _foreign_subject),
    TenantEndpoint("api:consent-subject-grant", ("post",), _foreign_subject, body=_grant_body),
    TenantEndpoint("api:consent-subject-withdraw", ("post",), _foreign_subject),
    TenantEndpoint("api:consent-subject-history", ("get",), _foreign_subject),
    TenantEndpoint("api:consent-subject-requests", ("get", "post"), _foreign_subject, body={"kind": "access"}),
    TenantEndpoint("api:consent-request-detail", ("get",), _foreign_data_request("access")),
    TenantEndpoint("api:consent-request-export", ("get",), _foreign_data_request("export"), scopes=("export",)),
]

# Endpoints that list or summarise: B's marker never appears in A's answer.
LIST_ENDPOINTS: list[TenantEndpoint] = [
    TenantEndpoint("api:root", ("get",), _foreign_key_listed),
    TenantEndpoint("api:key-list", ("get",), _foreign_key_listed),
    TenantEndpoint("api:consent-notice-list", ("get",), _foreign_notice_listed),
    TenantEndpoint("api:consent-subject-list", ("get",), _foreign_subject_listed),
]

# Endpoints that carry no tenant data at all.
NO_TENANT_DATA: set[str] = {"api:schema", "api:docs"}


# --- faceanalysis ------------------------------------------------------------------------------------------------


def _small_jpeg_b64() -> str:
    import base64

    from tests.faceanalysis.factories import astronaut_rgb, encode

    return base64.b64encode(encode(astronaut_rgb()[180:260, 200:280].copy(), "JPEG")).decode()


def _small_webm_b64() -> str:
    import base64

    from tests.faceanalysis.factories import make_video

    return base64.b64encode(make_video(frames=2, fps=5)).decode()


def _foreign_capture_session(org: Organization) -> tuple[dict[str, Any], str]:
    from tests.faceanalysis.factories import make_capture_session

    session, _ = make_capture_session(org)
    return {"session_id": str(session.public_id)}, str(session.public_id)


def _foreign_capture_session_listed(org: Organization) -> tuple[dict[str, Any], str]:
    return {}, _foreign_capture_session(org)[1]


def _foreign_failed_frame_listed(org: Organization) -> tuple[dict[str, Any], str]:
    """A session with a frame that failed, so that the operator stats name it."""
    from faceanalysis.models import CaptureSession, Frame

    _, public_id = _foreign_capture_session(org)
    session = CaptureSession.objects.get(public_id=public_id)
    Frame.objects.create(
        organization=org, session=session, subject=session.subject, grant=session.grant, status=Frame.Status.FAILED,
        reason="decode_error", content_type="image/jpeg", byte_size=1, width=16, height=16, queue="analysis",
    )
    return {}, public_id


OBJECT_ENDPOINTS += [
    TenantEndpoint("api:capture-session-detail", ("get",), _foreign_capture_session),
    TenantEndpoint("api:capture-session-end", ("post",), _foreign_capture_session),
    TenantEndpoint("api:capture-session-timeline", ("get",), _foreign_capture_session),
    TenantEndpoint(
        "api:capture-session-frames", ("post", "get"), _foreign_capture_session,
        body={"frames": [{"data": _small_jpeg_b64(), "content_type": "image/jpeg"}]},
    ),
    TenantEndpoint(
        "api:capture-session-video", ("post",), _foreign_capture_session,
        body={"video": _small_webm_b64(), "content_type": "video/webm", "sample_fps": 5},
    ),
]
LIST_ENDPOINTS += [
    TenantEndpoint("api:capture-session-list", ("get",), _foreign_capture_session_listed),
    TenantEndpoint("api:analysis-stats", ("get",), _foreign_failed_frame_listed),
]
# Authenticated by the subject's own "my data" token, not by a partner key or member; the subject's organization
# is the only one it reaches (tests/faceanalysis/test_intake.py covers forged tokens).
NO_TENANT_DATA |= {"api:capture-session-start"}


# --- campaigns, variants, rules --------------------------------------------------------------------------------------

_DEVICE_RULE = {"field": "request.device", "op": "eq", "value": "mobile"}


def _campaign_with_content(org: Organization):
    """A draft campaign of B with a default variant, a spare one and a rule."""
    from campaigns.models import Rule, Variant
    from tests.factories import make_campaign

    campaign = make_campaign(org, status="draft")
    default = Variant.objects.create(organization=org, campaign=campaign, key="default", name="B default",
                                     is_default=True)
    Variant.objects.create(organization=org, campaign=campaign, key="spare", name="B spare")
    rule = Rule.objects.create(organization=org, campaign=campaign, name="B rule", condition=_DEVICE_RULE,
                               variant=default)
    return campaign, rule


def _foreign_campaign(org: Organization) -> tuple[dict[str, Any], str]:
    campaign, _ = _campaign_with_content(org)
    return {"public_id": campaign.public_id}, campaign.public_id


def _foreign_campaign_listed(org: Organization) -> tuple[dict[str, Any], str]:
    return {}, _foreign_campaign(org)[1]


def _foreign_variant(key: str) -> Maker:
    def make(org: Organization) -> tuple[dict[str, Any], str]:
        campaign, _ = _campaign_with_content(org)
        return {"public_id": campaign.public_id, "key": key}, campaign.public_id

    return make


def _foreign_rule(org: Organization) -> tuple[dict[str, Any], str]:
    campaign, rule = _campaign_with_content(org)
    return {"public_id": campaign.public_id, "rule_id": rule.pk}, campaign.public_id


OBJECT_ENDPOINTS += [
    TenantEndpoint("api:campaign-detail", ("get", "patch"), _foreign_campaign, body={"name": "Renamed"}),
    TenantEndpoint("api:campaign-variant-list", ("get", "post"), _foreign_campaign,
                   body={"key": "new", "name": "New"}),
    TenantEndpoint("api:campaign-variant-detail", ("get", "patch"), _foreign_variant("default"),
                   body={"headline": "Changed"}),
    TenantEndpoint("api:campaign-variant-detail", ("delete",), _foreign_variant("spare")),
    TenantEndpoint("api:campaign-rule-list", ("get", "post"), _foreign_campaign,
                   body={"name": "New rule", "condition": _DEVICE_RULE, "variant": "default"}),
    TenantEndpoint("api:campaign-rule-detail", ("get", "patch"), _foreign_rule, body={"priority": 5}),
    TenantEndpoint("api:campaign-rule-detail", ("delete",), _foreign_rule),
]
LIST_ENDPOINTS += [TenantEndpoint("api:campaign-list", ("get",), _foreign_campaign_listed)]
# capture.js on a partner's page: the visitor's own signed "my data" cookie names the subject, checked against the
# campaign's organization (tests/campaigns/test_public_capture.py covers a foreign campaign and cookie).
NO_TENANT_DATA |= {"api:public-capture-session-open"}


# --- campaigns: decisions and events -----------------------------------------------------------------------------

_decision_body: dict[str, Any] = {}
_event_body: dict[str, Any] = {}
VISITOR_ID = "tenancy-visitor-0123456789"


def _foreign_running_campaign(org: Organization):
    from tests.factories import make_campaign, make_variant

    campaign = make_campaign(org)
    make_variant(campaign, key="standard", default=True)
    return campaign


def _foreign_campaign(org: Organization) -> tuple[dict[str, Any], str]:
    """B's running campaign, named in the body (decisions take it there, not in the URL)."""
    campaign = _foreign_running_campaign(org)
    _decision_body.update(campaign=campaign.public_id, visitor_id=VISITOR_ID)
    return {}, campaign.public_id


def _foreign_decision(org: Organization) -> tuple[dict[str, Any], str]:
    """A decision in B's campaign, named in the event's body."""
    from django.utils import timezone

    from campaigns.decisions import decision_make
    from campaigns.request_context import request_attributes

    campaign = _foreign_running_campaign(org)
    decision = decision_make(campaign=campaign, visitor_id=VISITOR_ID, subject=None, channel="api",
                             attributes=request_attributes(now=timezone.now()))
    _event_body.update(decision=str(decision.public_id), client_event_id="tenancy-1", kind="click")
    return {}, str(decision.public_id)


OBJECT_ENDPOINTS += [
    TenantEndpoint("api:decision-create", ("post",), _foreign_campaign, body=_decision_body),
    TenantEndpoint("api:events", ("post",), _foreign_decision, body=_event_body),
]
# The snippet's endpoints take no key: a campaign's public id is all a visitor has, and the subject comes only from
# the consent page's cookie, which must be of the campaign's organization (tests/campaigns/test_decisions_api.py
# covers another organization's cookie, another visitor's decision and refused origins).
NO_TENANT_DATA |= {"api:public-decision-create", "api:public-event-create"}


# --- campaigns: experiments and results ------------------------------------------------------------------------


def _foreign_experiment(org: Organization, *, start: bool = True):
    """B's running campaign with an experiment (key "b-test", running unless told) and a decision in it."""
    from django.utils import timezone

    from campaigns.decisions import decision_make
    from campaigns.request_context import request_attributes
    from tests.factories import make_campaign, make_experiment, make_variant

    campaign = make_campaign(org)
    make_variant(campaign, key="standard", default=True)
    make_variant(campaign, key="b-challenger")
    make_experiment(campaign, [("standard", 0.5), ("b-challenger", 0.5)], key="b-test", start=start)
    decision_make(campaign=campaign, visitor_id=VISITOR_ID, subject=None, channel="api",
                  attributes=request_attributes(now=timezone.now()))
    return campaign


def _foreign_experiment_campaign(org: Organization) -> tuple[dict[str, Any], str]:
    campaign = _foreign_experiment(org)
    return {"public_id": campaign.public_id}, "b-challenger"


def _foreign_experiment_detail(org: Organization) -> tuple[dict[str, Any], str]:
    campaign = _foreign_experiment(org)
    return {"public_id": campaign.public_id, "key": "b-test"}, "b-challenger"


def _foreign_draft_experiment(org: Organization) -> tuple[dict[str, Any], str]:
    campaign = _foreign_experiment(org, start=False)
    return {"public_id": campaign.public_id, "key": "b-test"}, "b-challenger"


OBJECT_ENDPOINTS += [
    TenantEndpoint("api:campaign-experiment-list", ("get", "post"), _foreign_experiment_campaign,
                   body={"key": "a-test", "name": "A", "arms": [{"variant": "standard", "weight": 0.5},
                                                                {"variant": "b-challenger", "weight": 0.5}]}),
    TenantEndpoint("api:campaign-experiment-detail", ("get", "patch"), _foreign_experiment_detail,
                   body={"name": "Renamed"}),
    TenantEndpoint("api:campaign-experiment-start", ("post",), _foreign_draft_experiment),
    TenantEndpoint("api:campaign-experiment-stop", ("post",), _foreign_experiment_detail),
    TenantEndpoint("api:campaign-results", ("get",), _foreign_experiment_campaign),
]


# --- segments ----------------------------------------------------------------------------------------------------

B_SEGMENT = "b-secret-audience"


def _foreign_segment(kind: str) -> Maker:
    """B's segment of `kind` with a member whose partner-sharing consent is live (so members, exports and matches
    have someone to leak), and a run (so the history has a row)."""

    def make(org: Organization) -> tuple[dict[str, Any], str]:
        from segments.services import segment_recompute, segment_save, segment_snapshot
        from tests.segments.factories import World

        World(org).subject(partner_user_id="shared-user-id")
        segment = segment_save(organization=org, key=B_SEGMENT, name="B audience", kind=kind,
                               definition={"field": "subject.partner_linked", "op": "eq", "value": True})
        if kind == "static":
            segment_snapshot(segment=segment)
        else:
            segment_recompute(segment_id=segment.pk)
        return {"key": B_SEGMENT}, B_SEGMENT

    return make


def _foreign_segment_listed(org: Organization) -> tuple[dict[str, Any], str]:
    return {}, _foreign_segment("dynamic")(org)[1]


OBJECT_ENDPOINTS += [
    TenantEndpoint("api:segment-detail", ("get", "patch"), _foreign_segment("dynamic"), body={"name": "Renamed"}),
    TenantEndpoint("api:segment-detail", ("delete",), _foreign_segment("dynamic")),
    TenantEndpoint("api:segment-history", ("get",), _foreign_segment("dynamic")),
    TenantEndpoint("api:segment-recompute", ("post",), _foreign_segment("dynamic")),
    TenantEndpoint("api:segment-snapshot", ("post",), _foreign_segment("static")),
    TenantEndpoint("api:segment-upload", ("post",), _foreign_segment("static"), body={"ids": ["shared-user-id"]}),
    TenantEndpoint("api:segment-members", ("get",), _foreign_segment("static"), scopes=("export",)),
    TenantEndpoint("api:segment-export", ("get",), _foreign_segment("static"), scopes=("export",)),
    TenantEndpoint("api:segment-match", ("post",), _foreign_segment("static"),
                   body={"partner_user_ids": ["shared-user-id"]}, scopes=("export",)),
]
LIST_ENDPOINTS += [TenantEndpoint("api:segment-list", ("get",), _foreign_segment_listed)]
# The fields are the vocabulary, the same for everyone. A preview counts the caller's own subjects and refuses a
# definition that names another organization's segment or campaign with a 400 like an unknown one: a POST of a
# definition fits neither shape above, so tests/segments/test_api.py holds it (test_preview_*_other_organization).
NO_TENANT_DATA |= {"api:segment-fields", "api:segment-preview"}


# --- consent receipts --------------------------------------------------------------------------------------------


def _foreign_grant(org: Organization) -> tuple[dict[str, Any], str]:
    """A grant of B's subject: its receipt would carry B's subject id and B's controller name."""
    from tests.factories import make_grant, make_notice, make_subject

    subject = make_subject(org)
    grant = make_grant(subject, make_notice(org))
    return {"subject_id": str(subject.public_id), "grant_id": grant.pk}, str(subject.public_id)


OBJECT_ENDPOINTS += [TenantEndpoint("api:consent-subject-grant-receipt", ("get",), _foreign_grant)]
# --- consent: the partner event feed and the retention schedule ---------------------------------------------------


def _foreign_feed_event_listed(org: Organization) -> tuple[dict[str, Any], str]:
    """B's subject consents: its consent.granted event names the subject in B's feed."""
    return {}, _foreign_subject(org)[1]


LIST_ENDPOINTS += [TenantEndpoint("api:events", ("get",), _foreign_feed_event_listed)]


def _foreign_retention_policy(org: Organization) -> tuple[dict[str, Any], str]:
    """B's policy with a period no default has."""
    from consent.services import retention_policy_set

    retention_policy_set(organization=org, feature_retention_days=1093)
    return {}, '"period":1093'


LIST_ENDPOINTS += [TenantEndpoint("api:consent-retention", ("get",), _foreign_retention_policy)]
