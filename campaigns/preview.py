"""The admin's "What would this visitor get?": a context from a real subject of the organization, or one typed
by the marketer (face signals made of synthetic frames that read back as typed, consent states, request
attributes), run through the decision's pure choice. Writes nothing: no decision log, no subject, no cache."""

from __future__ import annotations

import time
from dataclasses import dataclass

from django import forms

from campaigns import decisions
from campaigns.conditions import EvaluationContext
from campaigns.models import Campaign, Rule
from campaigns.request_context import DEVICES, WEEKDAYS, RequestAttributes
from consent.guards import GrantState
from consent.models import Purpose, Subject
from consent.selectors import subject_get
from faceanalysis.engine import EXPRESSION_LABELS
from faceanalysis.signals import AGE_BANDS, GENDER_LABELS, FaceSignals, FrameSignal

EXPRESSIONS = EXPRESSION_LABELS
DECISION_PURPOSES = (Purpose.FACE_ANALYSIS, Purpose.PERSONALIZATION, Purpose.PARTNER_SHARING)
# The age a synthetic frame carries for each band: inside the band, away from its edges.
BAND_AGES = {"under_18": 15.0, "18_24": 21.0, "25_34": 30.0, "35_44": 40.0, "45_54": 50.0, "55_64": 60.0,
             "65_plus": 70.0}
MAX_FRAMES = 500
REASONS = {
    "emotion_recognition_forbidden": "emotion recognition is forbidden in this setting (EU AI Act Art. 5(1)(f))",
    "no_subject": "an anonymous visitor has no face signals",
    "no_face_analysis_consent": "no live face-analysis consent",
    "no_personalization_consent": "no live personalization consent",
    "no_fresh_features": "not enough fresh frames of enough quality",
}


def _share(label: str) -> forms.FloatField:
    return forms.FloatField(label=label, required=False, min_value=0, max_value=1, help_text="0 to 1; blank: no data")


class PreviewForm(forms.Form):
    """Who the visitor is: a subject of the organization by public id, or typed face signals and consent states;
    and the request they come with."""

    subject = forms.CharField(
        required=False, max_length=64, label="Subject public id",
        help_text="A real subject of this organization: their live consent and recent face signals are used, and "
                  "the typed face signals and consent states below are ignored.",
    )
    anonymous = forms.BooleanField(required=False, label="Anonymous visitor (no subject)")
    frames = forms.IntegerField(min_value=0, max_value=MAX_FRAMES, initial=10, label="Frames analysed",
                                help_text="In the last few minutes.")
    quality_share = _share("Quality share (frames that count)")
    smile_share = _share("Smile share")
    attention_share = _share("Attention share")
    top_expression = forms.ChoiceField(choices=[("", "—"), *((e, e) for e in EXPRESSIONS)], required=False)
    age_band = forms.ChoiceField(choices=[("", "—"), *((b, b) for b in AGE_BANDS)], required=False)
    gender = forms.ChoiceField(choices=[("", "—"), *((g, g) for g in GENDER_LABELS)], required=False)

    device = forms.ChoiceField(choices=[(d, d) for d in DEVICES], initial="desktop")
    language = forms.CharField(required=False, max_length=8, help_text="Primary subtag: de")
    country = forms.CharField(required=False, max_length=2, help_text="ISO alpha-2: DE")
    utm_source = forms.CharField(required=False, max_length=200)
    utm_medium = forms.CharField(required=False, max_length=200)
    utm_campaign = forms.CharField(required=False, max_length=200)
    referrer_host = forms.CharField(required=False, max_length=200)
    local_hour = forms.IntegerField(min_value=0, max_value=23, initial=12)
    weekday = forms.ChoiceField(choices=[(d, d) for d in WEEKDAYS])
    returning = forms.BooleanField(required=False, label="Returning visitor")

    def __init__(self, *args, campaign: Campaign, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.campaign = campaign
        self.subject: Subject | None = None
        states = [(s.value, s.value) for s in GrantState if s != GrantState.UNKNOWN_SUBJECT]
        for purpose in DECISION_PURPOSES:
            self.fields[f"consent_{purpose}"] = forms.ChoiceField(
                choices=states, label=f"Consent: {purpose.label}",
                initial=GrantState.ACTIVE if purpose != Purpose.PARTNER_SHARING else GrantState.NONE,
            )
        for label in EXPRESSIONS:
            self.fields[f"expression_{label}"] = _share(f"Expression probability: {label}")
        # Typed consent and expression probabilities sit with the typed face signals, before the request.
        names = list(self.fields)
        typed = [n for n in names if n.startswith(("consent_", "expression_"))]
        rest = [n for n in names if n not in typed]
        at = rest.index("device")
        self.order_fields([*rest[:at], *typed, *rest[at:]])

    def clean_subject(self) -> str:
        public_id = self.cleaned_data["subject"].strip()
        if public_id:
            # Scoped to the campaign's organization: another organization's subject is "not found", like a typo.
            self.subject = subject_get(organization=self.campaign.organization, public_id=public_id)
            if self.subject is None:
                raise forms.ValidationError("No subject with this public id in the campaign's organization.")
        return public_id

    def clean_country(self) -> str:
        return self.cleaned_data["country"].strip().upper()

    def clean_language(self) -> str:
        return self.cleaned_data["language"].strip().lower()

    def attributes(self) -> RequestAttributes:
        """The typed request."""
        data = self.cleaned_data
        utm = {key: data[key].strip() for key in ("utm_source", "utm_medium", "utm_campaign") if data[key].strip()}
        return RequestAttributes(
            device=data["device"], language=data["language"], country=data["country"], utm=utm,
            referrer_host=data["referrer_host"].strip().lower(), local_hour=data["local_hour"],
            weekday=data["weekday"], returning=data["returning"],
        )

    def typed_frames(self, *, now: float) -> list[FrameSignal]:
        """Frames, one a second back from `now`, that read back as typed: the first `quality_share` of them
        count, and among those the first `smile_share` smile, the first `attention_share` look at the screen;
        each counting frame has the typed top expression, probabilities, age band and gender, all confident.
        A field left blank is missing from every frame (its rules find no fresh features)."""
        data = self.cleaned_data
        total = data["frames"] or 0
        quality = 1.0 if data["quality_share"] is None else data["quality_share"]
        counting = round(total * quality)
        probabilities = {e: data[f"expression_{e}"] for e in EXPRESSIONS if data[f"expression_{e}"] is not None}
        top = data["top_expression"] or (max(probabilities, key=probabilities.get) if probabilities else "")

        def first(share: float | None, index: int) -> bool | None:
            return None if share is None else index < round(counting * share)

        frames = []
        for index in range(total):
            counts = index < counting
            smiling = first(data["smile_share"], index) if counts else None
            frames.append(FrameSignal(
                at=now - index, counting=counts,
                looking=first(data["attention_share"], index) if counts else None,
                smile=None if smiling is None else (0.9 if smiling else 0.1),
                expression=top if counts else "",
                expression_confidence=0.9 if counts and top else None,
                expression_probabilities=(probabilities or ({top: 0.9} if top else None)) if counts else None,
                age_years=BAND_AGES.get(data["age_band"]) if counts else None,
                gender=data["gender"] if counts else "",
                gender_confidence=0.9 if counts and data["gender"] else None,
            ))
        return frames

    def typed_context(self, *, now: float) -> EvaluationContext:
        """The context a visitor with the typed consent states and face signals would bring."""
        data = self.cleaned_data
        forbidden = self.campaign.emotion_recognition_forbidden
        if data["anonymous"]:
            return EvaluationContext(request=self.attributes(), consent={}, face=None, face_unavailable="no_subject",
                                     emotion_recognition_forbidden=forbidden)
        consent = {str(p): data[f"consent_{p}"] for p in DECISION_PURPOSES}
        unavailable = None
        if consent[Purpose.FACE_ANALYSIS] != GrantState.ACTIVE:
            unavailable = "no_face_analysis_consent"
        elif consent[Purpose.PERSONALIZATION] != GrantState.ACTIVE:
            unavailable = "no_personalization_consent"
        face = None if unavailable else FaceSignals(self.typed_frames(now=now), now=now)
        return EvaluationContext(request=self.attributes(), consent=consent, face=face, face_unavailable=unavailable,
                                 emotion_recognition_forbidden=forbidden)


@dataclass(frozen=True)
class PreviewRow:
    """One rule as the preview shows it."""

    rule: Rule
    status: str  # matched | not_matched | skipped | not_tried | disabled
    node: str | None
    reason: str | None

    @property
    def explanation(self) -> str:
        if self.status == "matched":
            return "Matched: this rule's variant is shown."
        if self.status == "not_matched":
            return f"Not matched: {self.node or 'condition'} was false."
        if self.status == "skipped":
            why = REASONS.get(self.reason or "", self.reason or "")
            return f"Skipped: {why}" + (f" (at {self.node})." if self.node else ".")
        if self.status == "disabled":
            return "Disabled: not tried."
        return "Not tried: an earlier rule matched."


@dataclass(frozen=True)
class PreviewResult:
    """The choice and why."""

    evaluation: decisions.Evaluation | None
    rows: tuple[PreviewRow, ...]
    error: str | None
    source: str  # "subject" or "typed"
    experiment: str | None = None  # the running experiment's name: it decides for visitors no rule claims


def preview_run(*, form: PreviewForm) -> PreviewResult:
    """Evaluate the campaign's rules for the form's visitor (a valid form), writing nothing."""
    campaign = form.campaign
    if form.subject is not None:
        context = decisions.decision_context(campaign=campaign, subject=form.subject, attributes=form.attributes())
        source = "subject"
    else:
        context = form.typed_context(now=time.time())
        source = "typed"
    rules = list(Rule.objects.for_organization(campaign.organization).filter(campaign=campaign)
                 .select_related("variant").order_by("priority", "id"))
    try:
        evaluation = decisions.decision_evaluate(campaign=campaign, context=context)
    except decisions.DecisionError as error:
        return PreviewResult(None, tuple(PreviewRow(r, "not_tried", None, None) for r in rules), error.message,
                             source)
    steps = {step.rule_id: step for step in evaluation.trace}
    rows = []
    for rule in rules:
        step = steps.get(rule.pk)
        if step is not None:
            rows.append(PreviewRow(rule, step.status, step.node, step.reason))
        else:
            rows.append(PreviewRow(rule, "not_tried" if rule.enabled else "disabled", None, None))
    planned = decisions.campaign_plan(campaign).experiment
    return PreviewResult(evaluation, tuple(rows), None, source, planned.experiment.name if planned else None)
