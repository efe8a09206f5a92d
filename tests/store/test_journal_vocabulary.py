"""The journal's vocabulary: every action declares its shape, and a wrong shape is caught."""

import re
from types import SimpleNamespace
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mlcatalog.store import journal
from mlcatalog.store.journal import SHAPES, Action, EntityType, ShapeError


def lineage() -> dict[str, Any]:
    return {"count": 1, "ids": [7], "upstream": {"Run": [3]}, "downstream": {}}


def version_deleted() -> dict[str, Any]:
    return {
        "model_id": 1,
        "number": 2,
        "version": None,
        "stage": "NONE",
        "tags": {"team": "risk"},
        "aliases": ["champion"],
        "metrics": 4,
        "comments": {"count": 0, "ids": []},
        "documents": {"count": 1, "ids": [5], "revisions": 2},
        "lineage": lineage(),
    }


def test_every_action_is_entity_dot_past_tense_verb_and_declares_a_shape() -> None:
    assert set(SHAPES) == set(Action)
    for action in Action:
        assert re.fullmatch(r"[a-z_]+\.([a-z_]+ed|set)", action), action
        assert SHAPES[action].entity_types <= set(EntityType)


def test_a_matching_entry_passes() -> None:
    journal.check(
        "model_version.deleted", "ModelVersion", {"before": version_deleted(), "after": {}}
    )


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda b: b.pop("lineage"), "missing lineage"),
        (lambda b: b.update(extra=1), "undeclared extra"),
        (lambda b: b.update(number="2"), "number: expected int"),
        (lambda b: b.update(number=True), "number: expected int"),
        (lambda b: b.update(version=3), "version"),
        (lambda b: b["tags"].update(team=1), "tags.team: expected str"),
        (lambda b: b["comments"].update(ids=["1"]), "comments.ids[0]"),
        (lambda b: b["lineage"]["upstream"].update(Table=[1]), "not a EntityType"),
        (lambda b: b["documents"].pop("revisions"), "missing revisions"),
    ],
)
def test_a_wrong_before_is_caught(change: Any, message: str) -> None:
    before = version_deleted()
    change(before)
    with pytest.raises(ShapeError, match=re.escape(message)):
        journal.check("model_version.deleted", "ModelVersion", {"before": before, "after": {}})


def test_a_wrong_action_entity_or_envelope_is_caught() -> None:
    with pytest.raises(ShapeError, match="not a journal action"):
        journal.check("model.renamed", "Model", {"before": {}, "after": {}})
    with pytest.raises(ShapeError, match="not about a Dataset"):
        journal.check("model.updated", "Dataset", {"before": {}, "after": {}})
    with pytest.raises(ShapeError, match="before and after"):
        journal.check("model.updated", "Model", {"after": {}})
    with pytest.raises(ShapeError, match="after: undeclared"):
        journal.check(
            "model_version.deleted",
            "ModelVersion",
            {"before": version_deleted(), "after": {"x": 1}},
        )


def test_a_partial_update_may_hold_any_declared_field_and_no_other() -> None:
    journal.check(
        "model.updated", "Model", {"before": {"task": None}, "after": {"task": "ranking"}}
    )
    with pytest.raises(ShapeError, match="undeclared name"):
        journal.check("model.updated", "Model", {"before": {}, "after": {"name": "x"}})


def test_a_json_number_may_be_integral_but_an_enum_must_be_one_of_its_values() -> None:
    metric = {"name": "auc", "value": 1, "step": None, "dataset": None}
    journal.check(
        "model_version.metrics_logged",
        "ModelVersion",
        {"before": {}, "after": {"metrics": [metric]}},
    )
    edge = {"kind": "LINKED_TO", "upstream": ["Run", 1], "downstream": ["ModelVersion", 2]}
    with pytest.raises(ShapeError, match="not a EdgeKind"):
        journal.check("lineage.linked", "LineageEdge", {"before": {}, "after": edge})


def test_a_reader_must_name_the_shape_its_action_declares() -> None:
    entry = SimpleNamespace(
        action="model_version.deleted", changes={"before": version_deleted(), "after": {}}
    )
    assert journal.before(entry, journal.ModelVersionDeleted)["lineage"]["upstream"] == {"Run": [3]}
    with pytest.raises(ShapeError, match="is a ModelVersionDeleted, not ModelDeleted"):
        journal.before(entry, journal.ModelDeleted)


def test_entries_written_in_the_old_delete_shapes_are_read_in_todays() -> None:
    old_model = SimpleNamespace(
        action="model.deleted",
        changes={"before": {"name": "m", "version_ids": [4, 5, 9]}, "after": {}},
    )
    model = journal.before(old_model, journal.ModelDeleted)
    assert journal.expand_ids(model["versions"]["ids"]) == [4, 5, 9]
    assert model["lineage"]["downstream"] == {}
    journal.check("model.deleted", "Model", {"before": dict(model), "after": {}})
    old_version = SimpleNamespace(
        action="model_version.deleted",
        changes={"before": {"model_id": 1, "number": 2, "version": None}, "after": {}},
    )
    assert journal.before(old_version, journal.ModelVersionDeleted)["model_id"] == 1
    # The audit log reads every entry through changes(): old entries show today's shape there too.
    assert journal.changes(old_model)["before"] == dict(model)


def test_id_runs_write_consecutive_ids_as_first_and_last() -> None:
    assert journal.id_runs([9, 1, 2, 3, 5, 6, 3]) == [[1, 3], [5, 6], 9]
    assert journal.id_runs([]) == []


@given(st.sets(st.integers(min_value=1, max_value=10_000)))
def test_id_runs_expand_to_the_same_ids(ids: set[int]) -> None:
    runs = journal.id_runs(ids)
    assert journal.expand_ids(runs) == sorted(ids)
    assert len(runs) <= len(ids)


def entry(action: Action, before: dict[str, Any], after: dict[str, Any]) -> Any:
    return SimpleNamespace(action=action, changes={"before": before, "after": after})


def test_a_stage_change_needs_the_stage_it_leaves_and_the_one_it_enters() -> None:
    moved = entry(Action.MODEL_VERSION_STAGE_CHANGED, {"stage": "STAGING"}, {"stage": "PRODUCTION"})
    assert journal.policy_objects(moved) == ["Stage.STAGING", "Stage.PRODUCTION"]
    # NONE, where every version starts, needs no permission of its own.
    started = entry(Action.MODEL_VERSION_STAGE_CHANGED, {"stage": "NONE"}, {"stage": "DEVELOPMENT"})
    assert journal.policy_objects(started) == ["Stage.DEVELOPMENT"]


def test_deletes_need_the_stages_of_what_they_take() -> None:
    version = entry(Action.MODEL_VERSION_DELETED, {**version_deleted(), "stage": "STAGING"}, {})
    assert journal.policy_objects(version) == ["Stage.STAGING"]
    versions = {
        "count": 3,
        "ids": [[1, 3]],
        "numbers": [[1, 3]],
        "stages": {"NONE": 1, "PRODUCTION": 1, "ARCHIVED": 0},
    }
    model = entry(Action.MODEL_DELETED, {"versions": versions, "lineage": lineage()}, {})
    assert journal.policy_objects(model) == ["Stage.PRODUCTION"]
    assert journal.policy_objects(entry(Action.MODEL_UPDATED, {}, {"owner": "x"})) == []
