"""A campaign's public consent page: the notice, one unticked box per purpose, consent and refuse side by side.

After consent the visitor's browser session remembers who consented on this campaign (server side, in the Django
session), so that the capture page can open a capture session for that subject without the "my data" token ever
reaching page JavaScript."""

from dataclasses import dataclass

from django.conf import settings
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.csrf import csrf_protect
from django.views.decorators.http import require_http_methods

from campaigns.models import Campaign
from campaigns.selectors import campaign_get_public
from consent.evidence import request_evidence
from consent.guards import has_consents
from consent.models import Channel, NoticeVersion, Purpose
from consent.notice_text import purpose_description
from consent.pages import page_language
from consent.selectors import notice_get_published, notice_languages_published, subject_get
from consent.services import ConsentError, consent_give_on_page, consent_refuse, consent_shown

VISITOR_SESSION_KEY = "visage.visitors"
# The "my data" token is the visitor's own secret: it stays in their browser (a signed, HttpOnly cookie per
# campaign), never in the server-side session table, where anyone reading the database could collect them.
ACCESS_COOKIE_PREFIX = "visage_my_data_"
ACCESS_COOKIE_SALT = "campaigns.visitor.access"
ACCESS_COOKIE_MAX_AGE = 14 * 24 * 3600


@dataclass(frozen=True)
class Visitor:
    """Who consented on a campaign page in this browser session: the subject and their "my data" token."""

    subject_public_id: str
    access_token: str


def visitor_remember(
    request: HttpRequest, response: HttpResponse, *, campaign: Campaign, subject_public_id: str, access_token: str
) -> HttpResponse:
    """Remember the subject that just consented on this campaign's page in this browser: its pseudonymous id in
    the session, its "my data" token in a signed cookie only this browser holds."""
    visitors = dict(request.session.get(VISITOR_SESSION_KEY, {}))
    visitors[campaign.public_id] = {"subject": subject_public_id}
    request.session[VISITOR_SESSION_KEY] = visitors
    request.session.cycle_key()  # a fresh session id for the consenting visitor
    response.set_signed_cookie(
        f"{ACCESS_COOKIE_PREFIX}{campaign.public_id}",
        access_token,
        salt=ACCESS_COOKIE_SALT,
        max_age=ACCESS_COOKIE_MAX_AGE,
        httponly=True,
        secure=settings.SESSION_COOKIE_SECURE,
        samesite="Lax",
    )
    return response


def visitor_get(request: HttpRequest, *, campaign: Campaign) -> Visitor | None:
    """The subject that consented on this campaign's page in this browser session, if any."""
    entry = request.session.get(VISITOR_SESSION_KEY, {}).get(campaign.public_id)
    if not isinstance(entry, dict) or not entry.get("subject"):
        return None
    access_token = request.get_signed_cookie(
        f"{ACCESS_COOKIE_PREFIX}{campaign.public_id}", default="", salt=ACCESS_COOKIE_SALT,
        max_age=ACCESS_COOKIE_MAX_AGE,
    )
    return Visitor(subject_public_id=str(entry["subject"]), access_token=access_token)


def _render_page(
    request: HttpRequest,
    campaign: Campaign,
    notice: NoticeVersion,
    languages: list[str],
    *,
    error: str = "",
    ticked: list[str] | None = None,
    status: int = 200,
) -> HttpResponse:
    purposes = [
        {
            "value": p,
            "label": Purpose(p).label,
            "description": purpose_description(p, notice.derived_attribute_set, notice.language),
            "ticked": p in (ticked or []),
            "required": p in campaign.required_purpose_list,
        }
        # The camera's purposes first, then the extras.
        for p in [*campaign.required_purpose_list, *campaign.optional_purpose_list]
    ]
    context = {
        "campaign": campaign,
        "organization": campaign.organization,
        "notice": notice,
        "purposes": purposes,
        "languages": languages,
        "error": error,
        "capture_url": _capture_url_if_consented(request, campaign),
    }
    return render(request, "campaigns/consent_page.html", context, status=status)


def _capture_url_if_consented(request: HttpRequest, campaign: Campaign) -> str | None:
    """The camera page, when this browser session already consented on this campaign to everything the camera
    needs (face analysis and each required purpose, under a notice naming what the campaign derives)."""
    visitor = visitor_get(request, campaign=campaign)
    subject = subject_get(organization=campaign.organization, public_id=visitor.subject_public_id) if visitor else None
    if subject is None or not has_consents(
        organization_id=campaign.organization_id, subject_id=subject.pk, purposes=campaign.capture_purposes,
        derived_attributes=campaign.derived_attribute_set,
    ):
        return None
    return reverse("capture:capture-page", kwargs={"public_id": campaign.public_id})


@csrf_protect
@require_http_methods(["GET", "POST"])
def consent_page(request: HttpRequest, public_id: str) -> HttpResponse:
    """GET shows the notice in the visitor's language (and records `shown`); POST records consent or refusal."""
    campaign = campaign_get_public(public_id=public_id)
    if campaign is None:
        raise Http404
    organization = campaign.organization
    # The notice for exactly what the campaign offers and derives: a changed choice needs its own version.
    languages = notice_languages_published(
        organization=organization, purposes=campaign.purpose_list, derived_attributes=campaign.derived_attribute_set
    )
    if not languages:
        raise Http404
    if request.method == "POST" and request.POST.get("lang") not in languages:
        page_language(request, languages)
        return HttpResponse(_("There is no notice in this language."), status=400, content_type="text/plain")
    language = page_language(request, languages)
    notice = notice_get_published(
        organization=organization, language=language, purposes=campaign.purpose_list,
        derived_attributes=campaign.derived_attribute_set,
    )
    if notice is None:  # retired between the two reads
        raise Http404
    if request.method == "GET":
        consent_shown(
            organization=organization, notice=notice, channel=Channel.CONSENT_PAGE, context_ref=campaign.context_ref
        )
        return _render_page(request, campaign, notice, languages)

    action = request.POST.get("action")
    ticked = request.POST.getlist("purposes")
    if request.POST.get("notice") != notice.text_hash:
        # The visitor read another text than the one in force: show the current one, write nothing.
        error = _("The notice has changed since the page was loaded. Please read it again.")
        return _render_page(request, campaign, notice, languages, error=error, status=409)
    if (
        action == "consent" and set(ticked) <= set(campaign.purpose_list)
        and not set(ticked) & set(campaign.required_purpose_list)
    ):
        action = "refuse"  # the extras alone are no consent to what the camera needs: recorded as refusal
    if action == "refuse":
        consent_refuse(
            organization=organization,
            notice=notice,
            purposes=campaign.purpose_list,
            channel=Channel.CONSENT_PAGE,
            evidence=request_evidence(request),
            context_ref=campaign.context_ref,
        )
        return render(request, "campaigns/refused.html", {"campaign": campaign, "organization": organization})
    if action != "consent":
        return HttpResponse(_("Choose consent or refuse."), status=400, content_type="text/plain")
    try:
        subject, token = consent_give_on_page(
            organization=organization,
            notice=notice,
            purposes=ticked,
            offered_purposes=campaign.purpose_list,
            evidence=request_evidence(request),
            context_ref=campaign.context_ref,
        )
    except ConsentError as error:
        message = _("Tick at least one purpose, or refuse.") if error.code == "no_purpose" else str(error)
        return _render_page(request, campaign, notice, languages, error=message, ticked=ticked, status=400)
    if set(campaign.capture_purposes) <= set(ticked):
        # On to the camera page, which thanks, shows the personal "my data" link, and starts nothing by itself.
        url = reverse("capture:capture-page", kwargs={"public_id": campaign.public_id})
    else:
        url = reverse("consent:my-data", kwargs={"token": token})
    return visitor_remember(
        request,
        HttpResponseRedirect(f"{url}?lang={language}&welcome=1", status=303),
        campaign=campaign,
        subject_public_id=str(subject.public_id),
        access_token=token,
    )

