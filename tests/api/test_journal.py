"""Every mutation journals its change in the same transaction; a failed one leaves nothing."""

import hashlib
import json
from typing import Any

import pytest
from sqlalchemy import func, select

from mlcatalog.api.operations import audit
from mlcatalog.store.database import Database
from mlcatalog.store.rows import DocumentRevisionRow, JournalRow, ModelRow, ModelVersionRow
from tests import factories
from tests.conftest import Api


async def journal(database: Database) -> list[JournalRow]:
    async with database.read() as session:
        return list(await session.scalars(select(JournalRow).order_by(JournalRow.seq)))


async def test_each_mutation_appends_its_entry_with_actor_and_changes(
    api: Api, database: Database
) -> None:
    catalog = await factories.catalog(api)
    await api(
        'mutation($id: ID!) { updateModel(input: {id: $id, description: "new"}) { model { id } } }',
        id=catalog["model"]["id"],
    )
    entries = await journal(database)
    assert [e.action for e in entries] == [
        "project.created",
        "model.registered",
        "model_version.created",
        "model.updated",
    ]
    assert all(e.actor == "tester" for e in entries)
    assert entries[-1].changes == {"before": {"description": ""}, "after": {"description": "new"}}
    assert [e.seq for e in entries] == sorted({e.seq for e in entries})


async def test_a_mutation_that_fails_halfway_leaves_no_change_and_no_entry(
    api: Api, database: Database
) -> None:
    catalog = await factories.catalog(api)
    before = await journal(database)
    dataset = await factories.dataset(api)
    missing = (await factories.dataset_version(api, dataset["id"]))["id"]
    await api(
        "mutation($id: ID!) { deleteModel(input: {id: $id}) { deletedId } }",
        id=catalog["model"]["id"],
    )
    model = await factories.model(api, name="second")
    entries_before_failure = len(await journal(database))
    # The number is handed out and the version row written before the training dataset (bad) is
    # checked: the whole mutation must roll back.
    bad_dataset = missing.replace("RGF0YXNldFZlcnNpb246", "RGF0YXNldFZlcnNpb246OTk5")
    code, _ = await api.error(
        factories.CREATE_VERSION,
        input={
            "model": model["id"],
            "trainingDatasets": [bad_dataset],
            "tags": [{"key": "a", "value": "b"}],
        },
    )
    assert code in {"NOT_FOUND", "INVALID_ARGUMENT"}
    assert len(await journal(database)) == entries_before_failure
    async with database.read() as session:
        versions = await session.scalar(select(func.count()).select_from(ModelVersionRow))
        counter = await session.scalar(
            select(ModelRow.version_count).where(ModelRow.name == "second")
        )
    assert versions == 0
    assert counter == 0
    assert len(before) < entries_before_failure


UPSERT = """mutation($input: UpsertDocumentInput!) { upsertDocument(input: $input) { document { revision } } }"""
LOG = """query($first: Int, $after: String) { auditLog(first: $first, after: $after) {
  totalCount pageInfo { hasNextPage endCursor } edges { node { sequence action after } } } }"""


def canonical(content: dict[str, Any]) -> bytes:
    return json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


async def test_a_card_edit_journals_its_revision_digest_and_size_not_its_markdown(
    api: Api, database: Database
) -> None:
    catalog = await factories.catalog(api)
    model = catalog["model"]["id"]
    markdown = "# Fraud detector\n" + "Scores every payment. " * 4_000  # 88 KB
    await api(UPSERT, input={"subject": model, "markdown": markdown})
    await api(UPSERT, input={"subject": model, "markdown": markdown + "Retrained weekly."})
    async with database.read() as session:
        revisions = list(
            await session.scalars(
                select(DocumentRevisionRow).order_by(DocumentRevisionRow.revision)
            )
        )
    created, revised = (await journal(database))[-2:]
    assert created.action == "document.created"
    assert created.changes["after"] == {
        "document_id": revisions[0].document_id,
        "revision": 1,
        "revision_id": revisions[0].id,
        "sha256": hashlib.sha256(canonical(revisions[0].content)).hexdigest(),
        "size": len(canonical(revisions[0].content)),
        "sections": ["markdown"],
    }
    assert revised.action == "document.revised"
    assert revised.changes["before"] == {
        key: created.changes["after"][key] for key in ("document_id", "revision", "sha256", "size")
    }
    assert revised.changes["after"]["revision_id"] == revisions[1].id
    assert (
        revised.changes["after"]["sha256"]
        == hashlib.sha256(canonical(revisions[1].content)).hexdigest()
    )
    assert revised.changes["after"]["size"] > 88_000
    assert all(len(json.dumps(e.changes)) < 1000 for e in (created, revised))


async def test_run_parameters_are_journaled_by_name_and_digest(
    api: Api, database: Database
) -> None:
    await factories.project(api)
    params = [{"name": f"p{i:03}", "value": "v" * 5000} for i in range(100)]
    await factories.run(api, params=params)
    entry = (await journal(database))[-1]
    assert entry.action == "run.created"
    assert entry.changes["after"]["param_names"] == [p["name"] for p in params]
    stored = {p["name"]: p["value"] for p in params}
    assert entry.changes["after"]["params"] == {
        "sha256": hashlib.sha256(canonical(stored)).hexdigest(),
        "size": len(canonical(stored)),
    }
    assert len(json.dumps(entry.changes)) < 5000


async def pages(api: Api, first: int) -> list[dict[str, Any]]:
    found, after = [], None
    while True:
        page = (await api(LOG, first=first, after=after))["auditLog"]
        found.append(page)
        if not page["pageInfo"]["hasNextPage"]:
            return found
        after = page["pageInfo"]["endCursor"]


async def test_an_audit_page_stops_at_its_byte_budget_and_the_next_page_goes_on(api: Api) -> None:
    catalog = await factories.catalog(api)
    metrics = [{"name": f"metric-{i:04}", "value": 0.5, "dataset": "holdout"} for i in range(1000)]
    for _ in range(6):  # six entries of about 70 KB
        await api(
            "mutation($input: LogMetricsInput!) { logMetrics(input: $input) { __typename } }",
            input={"id": catalog["version"]["id"], "metrics": metrics},
        )
    found = await pages(api, first=50)
    sizes = [
        sum(
            len(
                json.dumps(
                    {"before": {}, "after": e["node"]["after"]}, separators=(",", ":")
                ).encode()
            )
            for e in page["edges"]
        )
        for page in found
    ]
    assert len(found) > 1
    assert all(size <= audit.PAGE_BYTES for size in sizes), sizes
    assert found[0]["pageInfo"]["hasNextPage"]
    sequences = [e["node"]["sequence"] for page in found for e in page["edges"]]
    assert sequences == sorted(set(sequences), reverse=True)
    assert len(sequences) == found[0]["totalCount"] == 3 + 6


async def test_an_entry_larger_than_the_budget_still_makes_a_page_of_one(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    await factories.catalog(api)
    monkeypatch.setattr(audit, "PAGE_BYTES", 1)
    found = await pages(api, first=50)
    assert [len(page["edges"]) for page in found] == [1, 1, 1]
    assert [page["pageInfo"]["hasNextPage"] for page in found] == [True, True, False]
    assert [page["edges"][0]["node"]["action"] for page in found] == [
        "model_version.created",
        "model.registered",
        "project.created",
    ]


async def test_a_backward_audit_page_keeps_the_entries_nearest_its_cursor(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    await factories.catalog(api)
    monkeypatch.setattr(audit, "PAGE_BYTES", 1)
    query = """query($before: String) { auditLog(last: 50, before: $before) {
      pageInfo { hasPreviousPage startCursor } edges { node { action } } } }"""
    actions: list[list[str]] = []
    before = None
    while True:
        page = (await api(query, before=before))["auditLog"]
        actions.append([e["node"]["action"] for e in page["edges"]])
        if not page["pageInfo"]["hasPreviousPage"]:
            break
        before = page["pageInfo"]["startCursor"]
    assert actions == [["project.created"], ["model.registered"], ["model_version.created"]]


async def test_long_text_and_big_values_are_journaled_by_digest(api: Api) -> None:
    catalog = await factories.catalog(api)
    long = "word " * 10_000
    await api(
        "mutation($input: UpdateModelInput!) { updateModel(input: $input) { model { id } } }",
        input={"id": catalog["model"]["id"], "description": long},
    )
    await api(
        "mutation($id: ID!, $body: String!) { addComment(input: {id: $id, body: $body}) { comment { id } } }",
        id=catalog["version"]["id"],
        body="short",
    )
    log = """{ auditLog(first: 2) { edges { node { action before after } } } }"""
    comment, update = [e["node"] for e in (await api(log))["auditLog"]["edges"]]
    assert comment["after"]["body"] == "short"  # small values stay readable
    data = json.dumps(long, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
    assert update["after"]["description"] == {
        "sha256": hashlib.sha256(data).hexdigest(),
        "size": len(data),
    }
    assert len(json.dumps(update)) < 1000
