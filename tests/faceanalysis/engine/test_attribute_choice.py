"""The engine derives only the attributes asked for (consent.derived keys): a stage no image needs does not run,
so its model is absent from the result and the batch timings, and what it would fill is withheld as
not_requested. Real models on a real face."""

from __future__ import annotations

import pytest

from faceanalysis.engine import EngineConfig

pytestmark = pytest.mark.slow

OPTIONAL_STAGES = {"expression", "age", "gender"}


def _keys(result) -> set[str]:
    return {model.key for model in result.models}


def test_attention_only_skips_expression_age_and_gender(engine, astronaut) -> None:
    everything = engine.analyze(astronaut)
    attention = engine.analyze(astronaut, attributes=())
    assert _keys(everything) >= OPTIONAL_STAGES
    assert _keys(attention) == {"detector", "landmarker"}
    assert not OPTIONAL_STAGES & set(attention.timings_ms)  # none of their sessions ran
    (face,) = attention.faces
    assert face.expression is None and face.age is None and face.gender is None and face.blendshapes is None
    assert {(w.attribute, w.reason) for w in face.withheld} == {
        ("blendshapes", "not_requested"), ("expression", "not_requested"), ("age", "not_requested"),
        ("gender", "not_requested"),
    }
    # What attention rests on is the same as with every stage.
    (full,) = everything.faces
    assert face.gaze == full.gaze and face.eyes == full.eyes and face.pose == full.pose and face.box == full.box
    assert face.quality == full.quality and face.gaze.looking_at_screen


def test_age_without_gender_runs_the_age_model_only(engine, astronaut) -> None:
    result = engine.analyze(astronaut, attributes=("age",))
    assert _keys(result) == {"detector", "landmarker", "age"}
    assert "age" in result.timings_ms and "gender" not in result.timings_ms and "expression" not in result.timings_ms
    (face,) = result.faces
    assert face.age is not None and 20 < face.age.years < 60
    assert face.gender is None and face.expression is None
    assert face.age == engine.analyze(astronaut).faces[0].age  # same estimate as in a full run


def test_a_batch_mixing_choices_gives_each_image_its_own(engine, astronaut) -> None:
    results = engine.analyze_batch([astronaut, astronaut, astronaut], attributes=[(), ("gender",), ("expression",)])
    assert [_keys(r) - {"detector", "landmarker"} for r in results] == [set(), {"gender"}, {"expression"}]
    attention, gender, expression = (r.faces[0] for r in results)
    assert attention.gender is None and attention.expression is None
    assert gender.gender is not None and gender.gender.label == "female" and gender.age is None
    assert expression.expression is not None and expression.expression.top == "happy" and expression.gender is None
    assert "age" not in results[0].timings_ms  # no image asked for age: its model never ran


def test_config_default_choice_applies_and_unknown_attributes_are_refused(models_dir, astronaut) -> None:
    from faceanalysis.engine import Engine

    narrow = Engine(EngineConfig(models_dir=models_dir, attributes=frozenset({"age"})))
    try:
        assert _keys(narrow.analyze(astronaut)) == {"detector", "landmarker", "age"}
    finally:
        narrow.close()
    with pytest.raises(ValueError, match="mind_reading"):
        EngineConfig(attributes=frozenset({"mind_reading"}))
