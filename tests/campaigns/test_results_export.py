"""The results as CSV (campaigns.results_export): a row per (metric, arm) with the table's columns, the holdout,
breakdowns and funnel after it, empty cells where nothing applies, numbers exact, and no text a spreadsheet would
run as a formula."""

from __future__ import annotations

import csv
import io

from campaigns.results_export import COLUMNS, results_csv

RESULTS = {
    "arms": [{"key": "a", "name": "Calm", "control": True, "weight": 0.5},
             {"key": "b", "name": "=HYPERLINK(\"http://evil\")", "control": False, "weight": 0.5}],
    "metrics": [
        {"key": "conversion", "label": "Conversion", "kind": "proportion", "reaction": False, "arms": [
            {"key": "a", "n": 100, "count": 10, "value": 0.1, "interval": [0.055, 0.174], "uplift": None,
             "uplift_interval": None, "p_value": None, "p_adjusted": None, "chance_to_win": None,
             "expected_loss": None, "significant": False},
            {"key": "b", "n": 100, "count": 20, "value": 0.2, "interval": [0.133, 0.289], "uplift": 1.0,
             "uplift_interval": [-0.0125, 3.05], "p_value": 0.0412, "p_adjusted": 0.0824, "chance_to_win": 0.97,
             "expected_loss": 0.0004, "significant": True},
        ]},
        {"key": "smile_share", "label": "Smile share", "kind": "mean", "reaction": True, "arms": [
            {"key": "a", "n": 12, "count": None, "value": 0.3, "interval": None, "uplift": None,
             "uplift_interval": None, "p_value": None, "p_adjusted": None, "chance_to_win": None,
             "expected_loss": None, "significant": False},
        ]},
    ],
    "holdout": {"visitors": 9, "conversions": 1, "rate": 1 / 9, "interval": [0.02, 0.43]},
    "breakdowns": {
        "device": [{"value": "mobile", "arms": [{"key": "a", "visitors": 40, "conversions": 4, "rate": 0.1,
                                                 "interval": None}]}],
        "language": [],
        "rule": [{"label": "-1+1", "variant": "a", "decisions": 5, "conversions": 2}],
    },
    "funnel": {"shown": 30, "granted": 20, "refused": 5, "withdrawn": 1},
}


def _rows() -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(results_csv(RESULTS))))


def test_header_is_the_columns_and_metric_rows_come_per_metric_and_arm() -> None:
    text = results_csv(RESULTS)
    assert next(csv.reader(io.StringIO(text))) == list(COLUMNS)
    metric_rows = [(r["metric"], r["arm"]) for r in _rows() if r["section"] == "metric"]
    assert metric_rows == [("conversion", "a"), ("conversion", "b"), ("smile_share", "a")]


def test_numbers_are_exact_and_missing_values_are_empty() -> None:
    b = next(r for r in _rows() if r["section"] == "metric" and r["arm"] == "b")
    assert float(b["uplift_low"]) == -0.0125 and float(b["p_value"]) == 0.0412 and b["significant"] == "true"
    assert b["control"] == "false" and b["n"] == "100" and b["count"] == "20"
    control = next(r for r in _rows() if r["section"] == "metric" and r["arm"] == "a")
    assert control["p_value"] == "" and control["uplift"] == "" and control["control"] == "true"
    smile = next(r for r in _rows() if r["metric"] == "smile_share")
    assert smile["reaction"] == "true" and smile["count"] == "" and smile["interval_low"] == ""


def test_holdout_breakdowns_and_funnel_follow() -> None:
    rows = _rows()
    assert [r["section"] for r in rows][3:] == ["holdout", "device", "rule", *["funnel"] * 4]
    assert next(r for r in rows if r["section"] == "device")["n"] == "40"
    assert {r["group"]: r["count"] for r in rows if r["section"] == "funnel"} == {
        "shown": "30", "granted": "20", "refused": "5", "withdrawn": "1"}


def test_text_that_a_spreadsheet_would_run_is_quoted() -> None:
    rows = _rows()
    b = next(r for r in rows if r["section"] == "metric" and r["arm"] == "b")
    assert b["arm_name"].startswith("'=")
    assert next(r for r in rows if r["section"] == "rule")["group"] == "'-1+1"


def test_an_overview_without_metrics_gives_its_rules_and_funnel_only() -> None:
    overview = {"funnel": RESULTS["funnel"], "breakdowns": {"rule": RESULTS["breakdowns"]["rule"]}}
    sections = [r["section"] for r in csv.DictReader(io.StringIO(results_csv(overview)))]
    assert sections == ["rule", "funnel", "funnel", "funnel", "funnel"]
