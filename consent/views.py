"""Public consent pages: the retention schedule, a notice's full text, and the personal "my data" page with its
data subject requests (access, export, erasure)."""

from collections import deque

from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect, JsonResponse
from django.shortcuts import render
from django.urls import reverse
from django.utils.dateparse import parse_datetime
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_POST

from consent import receipts
from consent.data_export import export_response, subject_data_summary, subject_export_section
from consent.data_requests import REQUESTED_BY_SUBJECT, data_request_create
from consent.evidence import request_evidence
from consent.guards import GrantState
from consent.models import Channel, DataRequest, Purpose
from consent.pages import SITE_LANGUAGES, access_cookies_follow_rotation, page_language, private_page
from consent.schedule import jurisdiction_label, schedule_rows
from consent.selectors import (
    access_token_was_replaced,
    consent_state,
    data_request_get,
    data_request_list,
    data_request_parts,
    ledger_list,
    notice_get_by_hash,
    organization_get_public,
    retention_policy_in_force,
    retention_snapshot_in_force,
    subject_get_by_access_token,
)
from consent.services import ConsentError, consent_withdraw, subject_access_token_rotate


@require_GET
def retention_schedule(request: HttpRequest, org_slug: str) -> HttpResponse:
    """The organization's public retention and destruction schedule (BIPA 740 ILCS 14/15(a)): every category in
    force. Without a saved policy the defaults are what the purge applies, so those are shown, and said to be."""
    organization = organization_get_public(slug=org_slug)
    if organization is None:
        raise Http404
    policy = retention_policy_in_force(organization=organization)
    language = page_language(request)
    context = {
        "organization": organization, "policy": policy, "defaults": policy.pk is None,
        "rows": schedule_rows(retention_snapshot_in_force(policy)),
        "jurisdiction": jurisdiction_label(policy.jurisdiction), "language": language, "languages": SITE_LANGUAGES,
    }
    return render(request, "consent/retention.html", context)


@require_GET
def notice_detail(request: HttpRequest, org_slug: str, text_hash: str) -> HttpResponse:
    """The exact text of a published (or formerly published) notice version, with its hash."""
    organization = organization_get_public(slug=org_slug)
    notice = notice_get_by_hash(organization=organization, text_hash=text_hash)
    if notice is None:
        raise Http404
    page_language(request, [notice.language])
    return render(request, "consent/notice.html", {"organization": organization, "notice": notice})


def _dead_link_page(request: HttpRequest, token: str) -> HttpResponse:
    """A plain page for a link that no longer works: 410 "replaced by a newer one" for a replaced token, else
    404 "not valid"; it names no one and shows nothing about whose link it was."""
    replaced = access_token_was_replaced(token=token)
    language = page_language(request)
    context = {"replaced": replaced, "language": language, "languages": SITE_LANGUAGES}
    return private_page(render(request, "consent/my_data_dead_link.html", context, status=410 if replaced else 404))


@require_GET
def my_data(request: HttpRequest, token: str) -> HttpResponse:
    """What is kept about the holder of this link, and one-click withdrawal."""
    subject = subject_get_by_access_token(token=token)
    if subject is None:
        return _dead_link_page(request, token)
    language = page_language(request)
    states = consent_state(organization=subject.organization, subject=subject)
    context = {
        "subject": subject,
        "organization": subject.organization,
        "token": token,
        "language": language,
        "languages": SITE_LANGUAGES,
        "states": [s for s in states if s.grant is not None],
        "active": [s for s in states if s.state == GrantState.ACTIVE],
        "history": ledger_list(organization=subject.organization, subject=subject).exclude(event="shown"),
        "welcome": request.GET.get("welcome") == "1",
        "done": request.GET.get("done", ""),
        **_access_context(subject),
    }
    return private_page(render(request, "consent/my_data.html", context))


RECENT_DECISIONS = 5


def _access_context(subject) -> dict:
    """The page's access view: what is kept per category, the segments the subject is in now, its latest
    decisions, and its requests with their parts."""
    organization = subject.organization
    memberships = subject_export_section(organization=organization, subject=subject, label="segments.SegmentMembership")
    decisions = deque(subject_export_section(organization=organization, subject=subject, label="campaigns.Decision"),
                      maxlen=RECENT_DECISIONS)
    requests = list(data_request_list(organization=organization, subject=subject)[:20])
    return {
        "kept": subject_data_summary(organization=organization, subject=subject),
        "segments": sorted({m["segment__name"] for m in memberships if m.get("exited_at") is None}),
        "decisions": [_with_times(d) for d in reversed(decisions)],
        "requests": [(r, data_request_parts(request=r)) for r in requests],
    }


def _with_times(row) -> dict:
    """An exported row for the page: its ISO timestamps (as the database wrote them) as datetimes again."""
    return {key: parse_datetime(value) if key.endswith("_at") and isinstance(value, str) else value
            for key, value in row.items()}


@require_POST
def my_data_export(request: HttpRequest, token: str) -> HttpResponse:
    """"Download my data": an export request, recorded and answered at once with the streamed document."""
    subject = subject_get_by_access_token(token=token)
    if subject is None:
        return _dead_link_page(request, token)
    outcome = data_request_create(
        organization=subject.organization, subject=subject, kind=DataRequest.Kind.EXPORT,
        channel=Channel.MY_DATA_PAGE, requested_by=REQUESTED_BY_SUBJECT, evidence=request_evidence(request),
    )
    response = export_response(organization=subject.organization, subject=subject,
                               filename=f"my-data-{outcome.request.public_id}.json")
    response["Referrer-Policy"] = "same-origin"
    return response


@require_POST
def my_data_erase(request: HttpRequest, token: str) -> HttpResponse:
    """"Erase everything": a confirmation page first; confirmed, the erasure request is recorded and a final
    page answers that needs no token (the link stops working at once)."""
    subject = subject_get_by_access_token(token=token)
    if subject is None:
        return _dead_link_page(request, token)
    language = page_language(request)
    context = {"organization": subject.organization, "language": language, "languages": SITE_LANGUAGES}
    if request.POST.get("confirm") != "yes":
        return private_page(render(request, "consent/my_data_erase_confirm.html", {**context, "token": token}))
    outcome = data_request_create(
        organization=subject.organization, subject=subject, kind=DataRequest.Kind.ERASURE,
        channel=Channel.MY_DATA_PAGE, requested_by=REQUESTED_BY_SUBJECT, evidence=request_evidence(request),
    )
    # Read again: in-process purges (no broker) have finished by now.
    erasure = data_request_get(organization=subject.organization, public_id=outcome.request.public_id)
    context |= {"erasure": erasure, "parts": data_request_parts(request=erasure)}
    return private_page(render(request, "consent/my_data_erased.html", context))


@require_POST
def my_data_withdraw(request: HttpRequest, token: str) -> HttpResponse:
    """Withdraw one purpose (or all) in one click; withdrawing twice is harmless."""
    subject = subject_get_by_access_token(token=token)
    if subject is None:
        return _dead_link_page(request, token)
    language = page_language(request)
    purpose = request.POST.get("purpose", "")
    if purpose != "all" and purpose not in Purpose.values:
        return private_page(HttpResponse(_("Unknown purpose."), status=400, content_type="text/plain"))
    try:
        consent_withdraw(
            organization=subject.organization,
            subject=subject,
            purposes=None if purpose == "all" else [purpose],
            channel=Channel.MY_DATA_PAGE,
            evidence=request_evidence(request),
        )
    except ConsentError as error:
        return private_page(HttpResponse(str(error), status=400, content_type="text/plain"))
    url = reverse("consent:my-data", kwargs={"token": token})
    return private_page(HttpResponseRedirect(f"{url}?lang={language}&done=withdrawn", status=303))


@require_POST
def my_data_rotate(request: HttpRequest, token: str) -> HttpResponse:
    """Replace the personal link with a new one; the old link stops working at once (and says it was replaced).
    This browser's cookies that kept the old link keep the new one."""
    subject = subject_get_by_access_token(token=token)
    if subject is None:
        return _dead_link_page(request, token)
    language = page_language(request)
    new_token = subject_access_token_rotate(subject=subject)
    url = reverse("consent:my-data", kwargs={"token": new_token})
    response = HttpResponseRedirect(f"{url}?lang={language}&done=rotated", status=303)
    access_cookies_follow_rotation(request, response, old_token=token, new_token=new_token)
    return private_page(response)


# --- signed consent receipts (consent.receipts) ---------------------------------------------------------------------


@require_GET
def my_data_receipt(request: HttpRequest, token: str, grant_id: int) -> HttpResponse:
    """One of the holder's grants as a signed Kantara consent receipt (compact JWS), as a file to keep."""
    subject = subject_get_by_access_token(token=token)
    if subject is None:
        return _dead_link_page(request, token)
    grant = receipts.receipt_grant_get(organization=subject.organization, subject=subject, grant_id=grant_id)
    if grant is None:
        return private_page(HttpResponse(_("No such receipt."), status=404, content_type="text/plain"))
    response = HttpResponse(receipts.receipt_sign(grant, request), content_type=receipts.MEDIA_TYPE)
    response["Content-Disposition"] = f'attachment; filename="consent-receipt-{grant.pk}.jws"'
    return private_page(response)


@require_GET
def receipt_keys(request: HttpRequest, org_slug: str) -> HttpResponse:
    """The organization's receipt signing keys as a JWKS (current and retired), for anyone to verify with."""
    organization = organization_get_public(slug=org_slug)
    if organization is None:
        raise Http404
    response = JsonResponse(receipts.receipt_jwks(organization), content_type="application/jwk-set+json")
    # Public keys: cacheable a few minutes (a rotation shows within that), readable from any origin.
    response["Cache-Control"] = "public, max-age=300"
    response["Access-Control-Allow-Origin"] = "*"
    return response
