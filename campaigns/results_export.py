"""An experiment's results (the dict of `campaigns.results.experiment_results`, or a campaign's overview) as one CSV
table a spreadsheet opens: a row per (metric, arm) with the report table's columns, the holdout, then the
breakdowns and the consent funnel, told apart by the `section` column. Pure: no Django."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from typing import Any

COLUMNS = (
    "section", "metric", "label", "kind", "reaction", "group", "arm", "arm_name", "control", "n", "count", "value",
    "interval_low", "interval_high", "uplift", "uplift_low", "uplift_high", "p_value", "p_adjusted",
    "chance_to_win", "expected_loss", "significant", "decisions", "conversions",
)
# A cell a spreadsheet would run as a formula: names come from marketers and partners, so such text is quoted.
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
FUNNEL_STAGES = ("shown", "granted", "refused", "withdrawn")


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    text = str(value)
    return "'" + text if text.startswith(FORMULA_START) else text


def _bounds(interval: Any) -> tuple[Any, Any]:
    return (interval[0], interval[1]) if interval else (None, None)


def _metric_rows(results: dict[str, Any]) -> Iterator[dict[str, Any]]:
    names = {arm["key"]: arm.get("name", arm["key"]) for arm in results.get("arms") or []}
    controls = {arm["key"] for arm in results.get("arms") or [] if arm.get("control")}
    for metric in results.get("metrics") or []:
        for arm in metric.get("arms") or []:
            low, high = _bounds(arm.get("interval"))
            uplift_low, uplift_high = _bounds(arm.get("uplift_interval"))
            yield {
                "section": "metric", "metric": metric["key"], "label": metric.get("label"),
                "kind": metric.get("kind"), "reaction": metric.get("reaction", False), "arm": arm["key"],
                "arm_name": names.get(arm["key"], arm["key"]), "control": arm["key"] in controls, "n": arm.get("n"),
                "count": arm.get("count"), "value": arm.get("value"), "interval_low": low, "interval_high": high,
                "uplift": arm.get("uplift"), "uplift_low": uplift_low, "uplift_high": uplift_high,
                "p_value": arm.get("p_value"), "p_adjusted": arm.get("p_adjusted"),
                "chance_to_win": arm.get("chance_to_win"), "expected_loss": arm.get("expected_loss"),
                "significant": arm.get("significant"),
            }


def _holdout_rows(results: dict[str, Any]) -> Iterator[dict[str, Any]]:
    holdout = results.get("holdout")
    if holdout:
        low, high = _bounds(holdout.get("interval"))
        yield {
            "section": "holdout", "metric": "conversion", "label": "Holdout", "kind": "proportion",
            "n": holdout.get("visitors"), "count": holdout.get("conversions"), "value": holdout.get("rate"),
            "interval_low": low, "interval_high": high,
        }


def _breakdown_rows(results: dict[str, Any]) -> Iterator[dict[str, Any]]:
    names = {arm["key"]: arm.get("name", arm["key"]) for arm in results.get("arms") or []}
    breakdowns = results.get("breakdowns") or {}
    for section in ("device", "language", "segment"):
        for group in breakdowns.get(section) or []:
            for arm in group.get("arms") or []:
                low, high = _bounds(arm.get("interval"))
                yield {
                    "section": section, "metric": "conversion", "kind": "proportion", "group": group.get("value"),
                    "arm": arm["key"], "arm_name": names.get(arm["key"], arm["key"]), "n": arm.get("visitors"),
                    "count": arm.get("conversions"), "value": arm.get("rate"), "interval_low": low,
                    "interval_high": high,
                }
    for rule in breakdowns.get("rule") or []:
        yield {
            "section": "rule", "group": rule.get("label"), "arm": rule.get("variant"),
            "arm_name": names.get(rule.get("variant"), rule.get("variant")), "decisions": rule.get("decisions"),
            "conversions": rule.get("conversions"),
        }


def _funnel_rows(results: dict[str, Any]) -> Iterator[dict[str, Any]]:
    funnel = results.get("funnel") or {}
    for stage in FUNNEL_STAGES:
        if stage in funnel:
            yield {"section": "funnel", "group": stage, "count": funnel[stage]}


def results_csv(results: dict[str, Any]) -> str:
    """The results as CSV text with a header of COLUMNS; empty cells where a column does not apply."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(COLUMNS)
    for producer in (_metric_rows, _holdout_rows, _breakdown_rows, _funnel_rows):
        for row in producer(results):
            writer.writerow([_cell(row.get(column)) for column in COLUMNS])
    return out.getvalue()
