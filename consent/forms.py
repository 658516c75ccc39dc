"""Form pieces shared by the admin pages that choose what is derived from faces (notices, campaigns)."""

from django import forms

from consent import derived


def derived_attribute_field(*, label: str = "Also derived (each named in the notice)") -> forms.MultipleChoiceField:
    """Checkboxes for the optional derived attributes; the core ones (attention analytics) are always derived."""
    core = ", ".join(a.label["en"] for a in derived.DERIVED_ATTRIBUTES if not a.optional)
    return forms.MultipleChoiceField(
        label=label,
        choices=[(a.key, a.label["en"]) for a in derived.DERIVED_ATTRIBUTES if a.optional],
        widget=forms.CheckboxSelectMultiple,
        required=False,
        help_text=f"Always derived: {core}. Untick what is not needed: its model does not run and nothing of it "
        "is stored.",
    )


def attribute_choices_initial(chosen: frozenset[str] | None) -> list[str]:
    """What the attribute boxes show ticked: a saved choice's optional attributes, or (new) all of them."""
    optional = list(derived.OPTIONAL_KEYS)
    return optional if chosen is None else [key for key in optional if key in chosen]


def derived_attributes_label(keys: frozenset[str]) -> str:
    """The attributes of a choice in catalogue order, in English, for admin lists."""
    return ", ".join(a.label["en"] for a in derived.DERIVED_ATTRIBUTES if a.key in keys)
