"""A campaign's public consent page: the notice, one unticked box per purpose, consent and refuse side by side.

After consent the visitor's browser session remembers who consented on this campaign (`consent.visitors`, keyed by
the campaign's public id), so that the capture page can open a capture session for that subject without the
"my data" token ever reaching page JavaScript."""

from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.csrf import csrf_protect
from django.views.decorators.http import require_GET, require_http_methods

from campaigns.models import Campaign
from campaigns.selectors import (
    CampaignReadiness,
    campaign_get_by_public_id,
    campaign_get_public,
    campaign_readiness,
    campaign_unavailable_status,
    capture_refusal,
)
from consent.evidence import request_evidence
from consent.models import Channel, NoticeVersion, Purpose
from consent.notice_text import purpose_description
from consent.pages import (
    SITE_LANGUAGES,
    page_language,
    page_language_wanted,
    page_visitor_id,
    page_visitor_remember,
    private_page,
)
from consent.selectors import notice_get_published
from consent.services import ConsentError, consent_give_on_page, consent_refuse, consent_shown
from consent.visitors import visitor_my_data_url, visitor_remember, visitor_subject


def campaign_unavailable(request: HttpRequest, *, public_id: str, status: int | None = None) -> HttpResponse:
    """The plain page for a campaign with no public page now (unknown, draft, ended, or missing a notice or a
    retention policy), in the visitor's language; never Django's (debug) 404. 410 once the campaign ended."""
    language = page_language(request)
    status = status or campaign_unavailable_status(public_id=public_id)
    context = {"language": language, "languages": SITE_LANGUAGES, "ended": status == 410}
    response = render(request, "campaigns/unavailable.html", context, status=status)
    response["Cache-Control"] = "no-store"
    return response


@require_GET
def visitor_my_data(request: HttpRequest, public_id: str) -> HttpResponse:
    """This browser's own "my data" page for a campaign it consented on: a redirect to the current personal link,
    so that a page left open (the capture page) never links a replaced one. Works for ended campaigns too: the
    visitor's rights outlive them."""
    campaign = campaign_get_by_public_id(public_id=public_id)
    language = page_language(request)
    url = (
        visitor_my_data_url(request, key=campaign.public_id, organization_id=campaign.organization_id)
        if campaign is not None
        else None
    )
    if url is None:
        context = {"not_here": True, "language": language, "languages": SITE_LANGUAGES}
        return private_page(render(request, "consent/my_data_dead_link.html", context, status=404))
    return private_page(HttpResponseRedirect(f"{url}?lang={language}", status=303))


def _render_page(
    request: HttpRequest,
    campaign: Campaign,
    notice: NoticeVersion,
    languages: list[str],
    *,
    error: str = "",
    ticked: list[str] | None = None,
    status: int = 200,
    preview: CampaignReadiness | None = None,
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
        "capture_url": None if preview is not None else _capture_url_if_consented(request, campaign),
        "preview": preview,
    }
    wanted = page_language_wanted(request)
    if wanted != notice.language:
        context["fallback_from"] = wanted  # no notice in the visitor's language: say which one is shown instead
    return render(request, "campaigns/consent_page.html", context, status=status)


def _capture_url_if_consented(request: HttpRequest, campaign: Campaign) -> str | None:
    """The camera page, when this browser session already consented on this campaign to everything the camera
    needs (face analysis and each required purpose, under a notice naming what the campaign derives)."""
    subject = visitor_subject(request, key=campaign.public_id, organization=campaign.organization)
    if capture_refusal(campaign=campaign, subject=subject) is not None:
        return None
    return reverse("capture:capture-page", kwargs={"public_id": campaign.public_id})


@csrf_protect
@require_http_methods(["GET", "POST"])
def consent_page(request: HttpRequest, public_id: str) -> HttpResponse:
    """GET shows the notice in the visitor's language (and records `shown`); POST records consent or refusal."""
    campaign = campaign_get_public(public_id=public_id)
    if campaign is None:
        return campaign_unavailable(request, public_id=public_id)
    organization = campaign.organization
    readiness = campaign_readiness(campaign=campaign)
    if not readiness.ready:
        return campaign_unavailable(request, public_id=public_id, status=404)
    languages = list(readiness.languages)
    if request.method == "POST" and request.POST.get("lang") not in languages:
        page_language(request, languages)
        return HttpResponse(_("There is no notice in this language."), status=400, content_type="text/plain")
    language = page_language(request, languages)
    notice = notice_get_published(
        organization=organization, language=language, purposes=campaign.purpose_list,
        derived_attributes=campaign.derived_attribute_set,
    )
    if notice is None:  # retired between the two reads
        return campaign_unavailable(request, public_id=public_id, status=404)
    if request.method == "GET":
        consent_shown(
            organization=organization,
            notice=notice,
            channel=Channel.CONSENT_PAGE,
            context_ref=campaign.context_ref,
            visitor_id=page_visitor_id(request),
        )
        return page_visitor_remember(request, _render_page(request, campaign, notice, languages))

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
        return _render_page(request, campaign, notice, languages, error=str(error), ticked=ticked, status=400)
    if set(campaign.capture_purposes) <= set(ticked):
        # On to the camera page, which thanks, shows the personal "my data" link, and starts nothing by itself.
        url = reverse("capture:capture-page", kwargs={"public_id": campaign.public_id})
    else:
        url = reverse("consent:my-data", kwargs={"token": token})
    return visitor_remember(
        request,
        HttpResponseRedirect(f"{url}?lang={language}&welcome=1", status=303),
        key=campaign.public_id,
        subject_public_id=str(subject.public_id),
        access_token=token,
    )



def consent_page_preview(request: HttpRequest, *, campaign: Campaign, readiness: CampaignReadiness) -> HttpResponse:
    """The consent page of a draft or active campaign as a visitor would see it, for its marketers: a "nothing is
    recorded" banner, the form disabled and posting nowhere; no ledger entry, subject, grant, visitor cookie or
    funnel count. Without a published notice it lists what is missing instead. The caller checks permission."""
    languages = list(readiness.languages)
    language = page_language(request, languages or SITE_LANGUAGES)
    notice = (
        notice_get_published(
            organization=campaign.organization, language=language, purposes=campaign.purpose_list,
            derived_attributes=campaign.derived_attribute_set,
        )
        if readiness.languages
        else None
    )
    if notice is None:
        context = {
            "campaign": campaign,
            "organization": campaign.organization,
            "languages": SITE_LANGUAGES,
            "readiness": readiness,
        }
        return private_page(render(request, "campaigns/preview_not_ready.html", context))
    return private_page(_render_page(request, campaign, notice, languages, preview=readiness))
