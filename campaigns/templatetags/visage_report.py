"""Numbers of the experiment report and the dashboard as people read them: shares as percentages, uplifts with
their sign, p-values without false precision, intervals as [low, high]; an em dash where there is no value."""

from __future__ import annotations

from typing import Any

from django import template

register = template.Library()
NONE = "—"


def _share(value: float, *, digits: int = 1) -> str:
    if value != 0 and abs(value) < 0.01:
        digits = max(digits, 2)
    return f"{value * 100:.{digits}f}%"


@register.filter
def percent(value: Any) -> str:
    """0.1234 -> 12.3%."""
    return NONE if value is None else _share(float(value))


@register.filter
def signed_percent(value: Any) -> str:
    """A relative change: 0.1234 -> +12.3%, -0.05 -> -5.0%."""
    if value is None:
        return NONE
    text = _share(float(value))
    return text if text.startswith("-") else f"+{text}"


@register.filter
def metric_value(value: Any, unit: str = "share") -> str:
    """A metric's value in its unit: a share as a percentage, an amount with two decimals."""
    if value is None:
        return NONE
    return _share(float(value), digits=2 if unit == "loss" else 1) if unit in ("share", "loss") else f"{value:,.2f}"


@register.filter
def interval(bounds: Any, unit: str = "share") -> str:
    """[low, high] in a metric's unit ("signed" for an uplift)."""
    if not bounds or bounds[0] is None or bounds[1] is None:
        return NONE
    show = signed_percent if unit == "signed" else (lambda v: metric_value(v, unit))
    return f"[{show(bounds[0])}, {show(bounds[1])}]"


@register.filter
def pvalue(value: Any) -> str:
    """A p-value: three decimals, "< 0.001" below that."""
    if value is None:
        return NONE
    return "< 0.001" if float(value) < 0.001 else f"{float(value):.3f}"


@register.filter
def p_is(value: Any) -> str:
    """The relation a p-value reads with after "p": "= 0.042", "< 0.001", or "unknown"."""
    if value is None:
        return "unknown"
    shown = pvalue(value)
    return shown if shown.startswith("<") else f"= {shown}"
