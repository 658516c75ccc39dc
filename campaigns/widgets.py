"""The admin's condition editor: a textarea holding the rule's condition tree as JSON, which
static/visage/condition_editor.js turns into rows of field / operator / value grouped by all / any / not. The JSON
stays editable beside it ("Edit JSON"); the server validates whatever arrives."""

from typing import Any

from django import forms


class ConditionEditorWidget(forms.Textarea):
    """A JSON textarea the condition editor script attaches to (the vocabulary comes from the page's
    `visage-condition-fields` script element, see the campaign change form)."""

    def __init__(self, attrs: dict[str, Any] | None = None) -> None:
        super().__init__(attrs={"class": "visage-condition vLargeTextField", "rows": 6, "cols": 80, **(attrs or {})})

    class Media:
        js = ("visage/condition_editor.js",)
