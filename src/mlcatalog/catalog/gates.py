"""Quality gates: rules, kept as data per project and stage, that a version must pass to enter
that stage (directly or by an approved request)."""

import math
from collections.abc import Mapping
from enum import StrEnum
from typing import Any

from sqlalchemy import and_, func, or_, select

from mlcatalog.catalog import validation
from mlcatalog.catalog.documents import SECTIONS
from mlcatalog.catalog.errors import CatalogError, ErrorCode, invalid
from mlcatalog.catalog.journal import record
from mlcatalog.catalog.steps import get
from mlcatalog.catalog.versions import Stage
from mlcatalog.store import queries
from mlcatalog.store.database import UnitOfWork
from mlcatalog.store.journal import Action, EdgeKind, EntityType, QualityGate
from mlcatalog.store.rows import (
    DatasetRow,
    DatasetTagRow,
    DatasetVersionRow,
    LineageEdgeRow,
    ModelVersionRow,
    ProjectRow,
    QualityGateRow,
)

MAX_GATES = 50  # per project: every move into a gated stage reads them all


class GateKind(StrEnum):
    METRIC_THRESHOLD = "METRIC_THRESHOLD"  # {metric, dataset, operator, value}
    CARD_SECTION = "CARD_SECTION"  # {section}
    NO_TAGGED_TRAINING_DATA = "NO_TAGGED_TRAINING_DATA"  # {key, value}


OPERATORS = {
    ">=": lambda found, wanted: found >= wanted,
    ">": lambda found, wanted: found > wanted,
    "<=": lambda found, wanted: found <= wanted,
    "<": lambda found, wanted: found < wanted,
}

_KEYS = {
    GateKind.METRIC_THRESHOLD: ({"metric", "operator", "value"}, {"dataset"}),
    GateKind.CARD_SECTION: ({"section"}, set[str]()),
    GateKind.NO_TAGGED_TRAINING_DATA: ({"key", "value"}, set[str]()),
}


def _string(parameters: Mapping[str, Any], key: str, max_length: int = 0) -> str:
    """A name (metric, tag key) by default; with ``max_length``, any line (a dataset such as
    ``transactions@v1``, a tag value) as the rules that write them allow."""
    value = parameters[key]
    if not isinstance(value, str):
        raise invalid(f"gate parameter {key} must be a string")
    if max_length:
        return validation.required_line(value, f"gate parameter {key}", max_length=max_length)
    return validation.name(value, f"gate parameter {key}")


def check_parameters(kind: GateKind, parameters: Mapping[str, Any]) -> dict[str, Any]:
    """The parameters of a ``kind`` of gate, checked and in their stored form."""
    required, optional = _KEYS[kind]
    given = set(parameters)
    if missing := required - given:
        raise invalid(f"a {kind} gate needs {', '.join(sorted(missing))}")
    if unknown := given - required - optional:
        unknown_keys = ", ".join(sorted(str(k)[:50] for k in unknown)[:10])
        raise invalid(f"a {kind} gate takes no {unknown_keys}")
    if kind == GateKind.METRIC_THRESHOLD:
        operator, value = parameters["operator"], parameters["value"]
        if operator not in OPERATORS:
            raise invalid(f"gate operator must be one of {', '.join(OPERATORS)}")
        if (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or not math.isfinite(value)
        ):
            raise invalid("gate parameter value must be a finite number")
        dataset = parameters.get("dataset")
        return {
            "metric": _string(parameters, "metric"),
            "dataset": None if dataset is None else _string(parameters, "dataset", 300),
            "operator": operator,
            "value": float(value),
        }
    if kind == GateKind.CARD_SECTION:
        if parameters["section"] not in SECTIONS:
            raise invalid(f"gate parameter section must be one of {', '.join(SECTIONS)}")
        return {"section": parameters["section"]}
    return {"key": _string(parameters, "key"), "value": _string(parameters, "value", 1000)}


def describe(kind: str, parameters: Mapping[str, Any]) -> str:
    """The rule as a person reads it: ``auc on holdout >= 0.9``."""
    if kind == GateKind.METRIC_THRESHOLD:
        on = f" on {parameters['dataset']}" if parameters.get("dataset") else ""
        return f"{parameters['metric']}{on} {parameters['operator']} {parameters['value']:g}"
    if kind == GateKind.CARD_SECTION:
        return f"a model card with {parameters['section']}"
    return f"trained on no dataset tagged {parameters['key']}={parameters['value']}"


async def add_gate(
    uow: UnitOfWork, *, project_id: int, stage: Stage, kind: GateKind, parameters: Any
) -> QualityGateRow:
    if not isinstance(parameters, dict):
        raise invalid("gate parameters must be a JSON object")
    checked = check_parameters(kind, parameters)
    await get(uow, ProjectRow, project_id, "project")
    gates = list(
        await uow.session.scalars(
            select(QualityGateRow).where(
                QualityGateRow.project_id == project_id, QualityGateRow.stage == stage
            )
        )
    )
    if any(g.kind == kind and g.parameters == checked for g in gates):
        raise CatalogError(ErrorCode.ALREADY_EXISTS, f"the gate {describe(kind, checked)!r} exists")
    total = await uow.session.scalar(
        select(func.count()).where(QualityGateRow.project_id == project_id)
    )
    if (total or 0) >= MAX_GATES:
        raise CatalogError(
            ErrorCode.FAILED_PRECONDITION, f"a project has at most {MAX_GATES} quality gates"
        )
    gate = QualityGateRow(
        project_id=project_id,
        stage=stage,
        kind=kind,
        parameters=checked,
        created_by=uow.actor,
    )
    uow.session.add(gate)
    await uow.session.flush()
    record(uow, Action.QUALITY_GATE_ADDED, gate.id, project_id=project_id, after=_journaled(gate))
    return gate


async def remove_gate(uow: UnitOfWork, *, gate_id: int) -> QualityGateRow:
    gate = await get(uow, QualityGateRow, gate_id, "quality gate")
    await uow.session.delete(gate)
    await uow.session.flush()
    record(
        uow,
        Action.QUALITY_GATE_REMOVED,
        gate.id,
        project_id=gate.project_id,
        before=_journaled(gate),
    )
    return gate


def _journaled(gate: QualityGateRow) -> QualityGate:
    return QualityGate(
        project_id=gate.project_id, stage=gate.stage, kind=gate.kind, parameters=gate.parameters
    )


async def enforce(
    uow: UnitOfWork, *, version: ModelVersionRow, project_id: int, stage: Stage
) -> None:
    """Refuse (FAILED_PRECONDITION) unless ``version`` passes every gate of ``stage`` in its
    project; the message names each rule that failed and what was found. At most four
    statements, however many gates: the gates, then one per kind in use."""
    gates = sorted(
        await uow.session.scalars(
            select(QualityGateRow).where(
                QualityGateRow.project_id == project_id, QualityGateRow.stage == stage
            )
        ),
        key=lambda gate: gate.id,
    )
    if not gates:
        return
    by_kind: dict[str, list[QualityGateRow]] = {}
    for gate in gates:
        by_kind.setdefault(gate.kind, []).append(gate)
    failures: list[str] = []
    failures += await _metrics(uow, version, by_kind.get(GateKind.METRIC_THRESHOLD, []))
    failures += await _cards(uow, version, by_kind.get(GateKind.CARD_SECTION, []))
    failures += await _tagged(uow, version, by_kind.get(GateKind.NO_TAGGED_TRAINING_DATA, []))
    if failures:
        raise CatalogError(
            ErrorCode.FAILED_PRECONDITION,
            f"version {version.number} fails the quality gates of {stage}: " + "; ".join(failures),
        )


async def _metrics(
    uow: UnitOfWork, version: ModelVersionRow, gates: list[QualityGateRow]
) -> list[str]:
    if not gates:
        return []
    keys = [(version.id, g.parameters["metric"], g.parameters.get("dataset")) for g in gates]
    found = await queries.metric_values(uow.session, keys)
    failures = []
    for gate, key in zip(gates, keys, strict=True):
        rule = describe(gate.kind, gate.parameters)
        metric = found.get(key)
        if metric is None:
            failures.append(f"{rule} (no such metric)")
        elif not OPERATORS[gate.parameters["operator"]](metric.value, gate.parameters["value"]):
            failures.append(f"{rule} (found {metric.value:g})")
    return failures


async def _cards(
    uow: UnitOfWork, version: ModelVersionRow, gates: list[QualityGateRow]
) -> list[str]:
    """A section counts when the version's card or else its model's card fills it in."""
    if not gates:
        return []
    subjects = [
        (EntityType.MODEL_VERSION.value, version.id),
        (EntityType.MODEL.value, version.model_id),
    ]
    cards = await queries.documents_of(uow.session, subjects)
    failures = []
    for gate in gates:
        section = gate.parameters["section"]
        rule = describe(gate.kind, gate.parameters)
        if not cards:
            failures.append(f"{rule} (no model card)")
        elif not any((card.content.get(section) or "").strip() for card in cards.values()):
            failures.append(f"{rule} (the section is empty)")
    return failures


async def _tagged(
    uow: UnitOfWork, version: ModelVersionRow, gates: list[QualityGateRow]
) -> list[str]:
    if not gates:
        return []
    pairs = {(g.parameters["key"], g.parameters["value"]) for g in gates}
    stmt = (
        select(DatasetRow.name, DatasetTagRow.key, DatasetTagRow.value)
        .select_from(LineageEdgeRow)
        .join(DatasetVersionRow, DatasetVersionRow.id == LineageEdgeRow.source_id)
        .join(DatasetRow, DatasetRow.id == DatasetVersionRow.dataset_id)
        .join(DatasetTagRow, DatasetTagRow.dataset_id == DatasetRow.id)
        .where(
            LineageEdgeRow.kind == EdgeKind.TRAINED_ON,
            LineageEdgeRow.source_type == EntityType.DATASET_VERSION,
            LineageEdgeRow.target_type == EntityType.MODEL_VERSION,
            LineageEdgeRow.target_id == version.id,
            or_(*(and_(DatasetTagRow.key == k, DatasetTagRow.value == v) for k, v in pairs)),
        )
        .limit(1000)
    )
    tagged: dict[tuple[str, str], list[str]] = {}
    for name, key, value in sorted(await uow.session.execute(stmt)):
        names = tagged.setdefault((key, value), [])
        if name not in names:
            names.append(name)
    failures = []
    for gate in gates:
        hits = tagged.get((gate.parameters["key"], gate.parameters["value"]), [])
        if hits:
            shown = ", ".join(hits[:5]) + (f" and {len(hits) - 5} more" if len(hits) > 5 else "")
            failures.append(f"{describe(gate.kind, gate.parameters)} (trained on {shown})")
    return failures
