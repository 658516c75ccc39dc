"""The admin's condition editor, shared by a campaign's rules and a segment's definition (here, so that both apps
may import it): a textarea holding the condition tree as JSON, which static/visage/condition_editor.js turns into
rows of field / operator / value (and the field's parameters) grouped by all / any / not. The JSON stays editable
beside it ("Edit JSON"); the server validates whatever arrives."""

from typing import Any

from django import forms


class ConditionEditorWidget(forms.Textarea):
    """A JSON textarea the condition editor script attaches to (the vocabulary comes from the page's
    `visage-condition-fields` script element, see the campaign and segment change forms). `path_root` is the
    name the server's error paths start with ("condition", "definition"); with a `data-preview-url` attribute
    the editor posts the tree there as it changes and shows the answer (the segment editor's live size)."""

    def __init__(self, attrs: dict[str, Any] | None = None, *, path_root: str = "condition") -> None:
        super().__init__(attrs={"class": "visage-condition vLargeTextField", "rows": 6, "cols": 80,
                                "data-path-root": path_root, **(attrs or {})})

    class Media:
        js = ("visage/condition_editor.js",)
