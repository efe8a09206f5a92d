"""A hard delete journals what it took with it: ids and counts, never contents, and stays small."""

import json
from typing import Any

from sqlalchemy import func, insert, select

from mlcatalog.catalog import datasets, documents, experiments, lineage, models, projects, versions
from mlcatalog.catalog.versions import MetricValue, Stage
from mlcatalog.store import journal
from mlcatalog.store.database import Database, Origin
from mlcatalog.store.journal import Action, EdgeKind, EntityType
from mlcatalog.store.rows import (
    CommentRow,
    DocumentRevisionRow,
    JournalRow,
    LineageEdgeRow,
    MetricRow,
    ModelVersionRow,
    ModelVersionTagRow,
    utcnow,
)


async def last_entry(database: Database) -> JournalRow:
    async with database.read() as session:
        entry = await session.scalar(select(JournalRow).order_by(JournalRow.seq.desc()).limit(1))
    assert entry is not None
    return entry


async def build(database: Database) -> dict[str, Any]:
    """A model with two versions and everything a version can own, fed by a dataset and a run,
    with a version of another model derived from it."""
    async with database.unit_of_work(Origin(actor="builder")) as uow:
        project = await projects.create_project(uow, name="fraud", description=None)
        model = await models.register_model(
            uow, project_id=project.id, name="detector", tags={"team": "risk"}
        )
        other = await models.register_model(uow, project_id=project.id, name="distilled")
        dataset = await datasets.create_dataset(uow, project_id=project.id, name="transactions")
        data = await datasets.create_dataset_version(
            uow, dataset_id=dataset.id, label="v1", uri="s3://d"
        )
        experiment = await experiments.create_experiment(uow, project_id=project.id, name="e")
        run = await experiments.create_run(uow, experiment_id=experiment.id, name="r")
        first = await versions.create_model_version(
            uow,
            model_id=model.id,
            stage=Stage.PRODUCTION,
            tags={"pii": "false"},
            metrics=[MetricValue("auc", 0.9), MetricValue("f1", 0.8)],
            source_run_id=run.id,
            training_dataset_version_ids=[data.id],
        )
        second = await versions.create_model_version(uow, model_id=model.id)
        child = await versions.create_model_version(uow, model_id=other.id)
        await lineage.add_edge(
            uow,
            kind=EdgeKind.DERIVED_FROM,
            upstream=(EntityType.MODEL_VERSION, first.id),
            downstream=(EntityType.MODEL_VERSION, child.id),
        )
        await versions.set_alias(uow, version_id=first.id, alias="champion")
        comment, _ = await versions.add_comment(uow, version_id=first.id, body="ship it")
        for subject_type, subject_id in (
            (EntityType.MODEL, model.id),
            (EntityType.MODEL_VERSION, first.id),
        ):
            for text in ("# one", "# two"):
                await documents.upsert_document(
                    uow,
                    subject_type=subject_type,
                    subject_id=subject_id,
                    content={"markdown": text},
                )
    return {
        "model": model.id,
        "first": first.id,
        "second": second.id,
        "child": child.id,
        "data": data.id,
        "run": run.id,
        "comment": comment.id,
    }


async def test_deleting_a_model_journals_its_versions_lineage_cards_metrics_and_comments(
    database: Database,
) -> None:
    ids = await build(database)
    async with database.read() as session:
        edges = sorted(await session.scalars(select(LineageEdgeRow.id)))
        cards = await session.scalar(select(func.count()).select_from(DocumentRevisionRow))
    async with database.unit_of_work(Origin(actor="auditor")) as uow:
        await models.delete_model(uow, model_id=ids["model"])
    entry = await last_entry(database)
    assert (entry.action, entry.entity_id, entry.actor) == (
        "model.deleted",
        ids["model"],
        "auditor",
    )
    before = journal.before(entry, journal.ModelDeleted)
    assert before["name"] == "detector"
    assert before["tags"] == {"team": "risk"}
    assert before["aliases"] == {"champion": ids["first"]}
    assert before["versions"] == {
        "count": 2,
        "ids": journal.id_runs([ids["first"], ids["second"]]),
        "numbers": [[1, 2]],
        "stages": {"NONE": 1, "PRODUCTION": 1},
    }
    assert (before["version_tags"], before["metrics"]) == (1, 2)
    assert before["comments"] == {"count": 1, "ids": [ids["comment"]]}
    assert before["documents"]["count"] == 2
    assert before["documents"]["revisions"] == cards == 4
    # Every edge touched one of its versions: run → first, data → first, first → child.
    assert before["lineage"]["count"] == 3
    assert journal.expand_ids(before["lineage"]["ids"]) == edges
    assert before["lineage"]["upstream"] == {
        "DatasetVersion": [ids["data"]],
        "Run": [ids["run"]],
    }
    assert before["lineage"]["downstream"] == {"ModelVersion": [ids["child"]]}
    async with database.read() as session:
        left = [
            await session.scalar(select(func.count()).select_from(table))
            for table in (LineageEdgeRow, DocumentRevisionRow, MetricRow, CommentRow)
        ]
    assert left == [0, 0, 0, 0]


async def test_deleting_a_version_journals_its_tags_aliases_cards_and_lineage(
    database: Database,
) -> None:
    ids = await build(database)
    async with database.unit_of_work(Origin(actor="auditor")) as uow:
        await versions.delete_model_version(uow, version_id=ids["first"])
    entry = await last_entry(database)
    assert entry.action == Action.MODEL_VERSION_DELETED
    before = journal.before(entry, journal.ModelVersionDeleted)
    assert {k: before[k] for k in ("model_id", "number", "stage", "tags", "aliases")} == {  # type: ignore[literal-required]
        "model_id": ids["model"],
        "number": 1,
        "stage": "PRODUCTION",
        "tags": {"pii": "false"},
        "aliases": ["champion"],
    }
    assert before["metrics"] == 2
    assert before["comments"]["ids"] == [ids["comment"]]
    assert (before["documents"]["count"], before["documents"]["revisions"]) == (1, 2)
    assert before["lineage"]["count"] == 3
    assert before["lineage"]["downstream"] == {"ModelVersion": [ids["child"]]}
    # The model's own card stays: it was not the version's.
    async with database.read() as session:
        assert await session.scalar(select(func.count()).select_from(DocumentRevisionRow)) == 2


async def test_a_model_of_ten_thousand_versions_journals_its_delete_in_kilobytes(
    database: Database,
) -> None:
    async with database.unit_of_work(Origin(actor="builder")) as uow:
        project = await projects.create_project(uow, name="big", description=None)
        big = await models.register_model(uow, project_id=project.id, name="big")
        other = await models.register_model(uow, project_id=project.id, name="other")
    # Versions of the two models interleave, so the big one's ids form no runs (the worst case).
    now = utcnow()
    stamp = {"created_at": now, "created_by": "b", "updated_at": now, "updated_by": "b"}
    rows = [
        {"model_id": model_id, "number": number, "stage": "NONE", **stamp}
        for number in range(1, 10_001)
        for model_id in (big.id, other.id)
    ]
    async with database.unit_of_work(Origin(actor="builder")) as uow:
        await uow.session.execute(insert(ModelVersionRow), rows)
        taken = select(ModelVersionRow.id).where(ModelVersionRow.model_id == big.id)
        version_ids = list(await uow.session.scalars(taken))
        await uow.session.execute(
            insert(MetricRow),
            [
                {"version_id": v, "name": name, "value": 0.5, "created_at": now, "created_by": "b"}
                for v in version_ids
                for name in ("auc", "f1", "loss")
            ],
        )
        await uow.session.execute(
            insert(ModelVersionTagRow),
            [{"version_id": v, "key": "k", "value": "v"} for v in version_ids],
        )
        await uow.session.execute(
            insert(CommentRow),
            [
                {"version_id": v, "body": "x" * 500, "created_at": now, "created_by": "b"}
                for v in version_ids
            ],
        )
    async with database.unit_of_work(Origin(actor="auditor")) as uow:
        await models.delete_model(uow, model_id=big.id)
    entry = await last_entry(database)
    before = journal.before(entry, journal.ModelDeleted)
    assert journal.expand_ids(before["versions"]["ids"]) == version_ids
    assert before["versions"]["numbers"] == [[1, 10_000]]
    assert (before["metrics"], before["version_tags"], before["comments"]["count"]) == (
        30_000,
        10_000,
        10_000,
    )
    size = len(json.dumps(entry.changes, separators=(",", ":")))
    # An interleaved version id costs its digits and a comma (about 55 KB for these 10,000); the
    # 5 MB of comments are one run of ids, the 30,000 metrics and the tags a count each.
    assert size < 100_000, size
