"""auditLog and history: the journal read back, filtered and paged."""

import base64
from typing import Any

import pytest

from mlcatalog.api.operations import audit
from tests import factories
from tests.conftest import Api


async def test_audit_log_filters_by_action_actor_and_project(api: Api) -> None:
    await factories.catalog(api)
    log = """query($filter: AuditFilter) { auditLog(filter: $filter) { totalCount edges { node {
      action actor entityType before after } } } }"""
    everything = (await api(log))["auditLog"]
    assert everything["totalCount"] == 3
    assert [e["node"]["action"] for e in everything["edges"]] == [
        "model_version.created",
        "model.registered",
        "project.created",
    ]
    registered = (await api(log, filter={"action": "model.registered", "project": "fraud"}))[
        "auditLog"
    ]
    assert registered["totalCount"] == 1
    assert registered["edges"][0]["node"]["after"]["name"] == "fraud-detector"
    assert (await api(log, filter={"actor": "nobody"}))["auditLog"]["totalCount"] == 0


HISTORY = """query($id: ID!, $first: Int, $after: String, $last: Int, $before: String) {
  history(id: $id, first: $first, after: $after, last: $last, before: $before) {
    totalCount pageInfo { hasNextPage hasPreviousPage endCursor startCursor }
    edges { node { action entityType entityId actor hash prevHash } } } }"""
ARCHIVE = "mutation($id: ID!) { archiveModel(input: {id: $id}) { model { archivedAt } } }"
RESTORE = "mutation($id: ID!) { restoreModel(input: {id: $id}) { model { archivedAt } } }"
DELETE = "mutation($id: ID!) { deleteModel(input: {id: $id}) { deletedId } }"


def actions(page: dict[str, Any]) -> list[str]:
    return [edge["node"]["action"] for edge in page["edges"]]


async def test_history_lists_an_objects_own_entries_newest_first(api: Api) -> None:
    catalog = await factories.catalog(api)
    model_id = catalog["model"]["id"]
    await api(ARCHIVE, id=model_id)
    await api(RESTORE, id=model_id)
    await factories.version(api, model_id)  # the version's entry is its own, not the model's
    page = (await api(HISTORY, id=model_id))["history"]
    assert actions(page) == ["model.restored", "model.archived", "model.registered"]
    assert page["totalCount"] == 3
    assert {edge["node"]["entityId"] for edge in page["edges"]} == {model_id}
    version = (await api(HISTORY, id=catalog["version"]["id"]))["history"]
    assert actions(version) == ["model_version.created"]
    assert version["edges"][0]["node"]["entityType"] == "ModelVersion"


async def test_history_hashes_chain_to_the_entries_before_them(api: Api) -> None:
    catalog = await factories.catalog(api)
    log = await api("{ auditLog { edges { node { hash prevHash } } } }")
    chain = [edge["node"] for edge in log["auditLog"]["edges"]][::-1]
    assert chain[0]["prevHash"] == "0" * 64
    assert [e["prevHash"] for e in chain[1:]] == [e["hash"] for e in chain[:-1]]
    [entry] = (await api(HISTORY, id=catalog["version"]["id"]))["history"]["edges"]
    assert entry["node"]["hash"] == chain[-1]["hash"]


async def test_history_pages_both_ways(api: Api) -> None:
    await factories.project(api)
    model = await factories.model(api)
    for _ in range(2):
        await api(ARCHIVE, id=model["id"])
        await api(RESTORE, id=model["id"])
    newest = ["model.restored", "model.archived"] * 2 + ["model.registered"]
    first = (await api(HISTORY, id=model["id"], first=2))["history"]
    assert actions(first) == newest[:2]
    assert first["pageInfo"]["hasNextPage"] and not first["pageInfo"]["hasPreviousPage"]
    rest = await api(HISTORY, id=model["id"], first=5, after=first["pageInfo"]["endCursor"])
    assert actions(rest["history"]) == newest[2:]
    assert not rest["history"]["pageInfo"]["hasNextPage"]
    last = (await api(HISTORY, id=model["id"], last=2))["history"]
    assert actions(last) == newest[-2:]
    before = await api(HISTORY, id=model["id"], last=2, before=last["pageInfo"]["startCursor"])
    assert actions(before["history"]) == newest[1:3]


async def test_history_of_a_deleted_object_stays(api: Api) -> None:
    catalog = await factories.catalog(api)
    await api(DELETE, id=catalog["model"]["id"])
    page = (await api(HISTORY, id=catalog["model"]["id"]))["history"]
    assert actions(page) == ["model.deleted", "model.registered"]


async def test_a_page_past_the_end_or_of_no_size_is_not_an_unknown_object(api: Api) -> None:
    catalog = await factories.catalog(api)
    model_id = catalog["model"]["id"]
    whole = (await api(HISTORY, id=model_id))["history"]
    past = (await api(HISTORY, id=model_id, after=whole["pageInfo"]["endCursor"]))["history"]
    assert past["edges"] == [] and past["pageInfo"]["hasPreviousPage"]
    none = (await api(HISTORY, id=model_id, first=0))["history"]
    assert none["edges"] == [] and none["pageInfo"]["hasNextPage"]
    none = (await api(HISTORY, id=model_id, last=0))["history"]
    assert none["edges"] == [] and none["pageInfo"]["hasPreviousPage"]


def global_id(raw: str) -> str:
    return base64.b64encode(raw.encode()).decode()


@pytest.mark.parametrize(
    ("node_id", "code", "message"),
    [
        ("garbage", "INVALID_ARGUMENT", 'Value cannot represent a GlobalID: "garbage".'),
        (global_id("Model:x"), "INVALID_ARGUMENT", "not a valid id"),
        (global_id("Model:2147483648"), "INVALID_ARGUMENT", "not a valid id"),
        (global_id("Nope:1"), "INVALID_ARGUMENT", "got the id of a Nope"),
        (global_id("Model:7"), "NOT_FOUND", "Model 7 does not exist"),
        (global_id("ApiToken:7"), "NOT_FOUND", "ApiToken 7 does not exist"),
    ],
)
async def test_a_malformed_or_unknown_id_has_no_history(
    api: Api, node_id: str, code: str, message: str
) -> None:
    await factories.catalog(api)
    got_code, got_message = await api.error(HISTORY, id=node_id)
    assert got_code == code and message in got_message, got_message


async def test_a_history_page_stops_at_the_journals_byte_budget(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    await factories.project(api)
    model = await factories.model(api)
    await api(ARCHIVE, id=model["id"])
    monkeypatch.setattr(audit, "PAGE_BYTES", 1)
    page = (await api(HISTORY, id=model["id"], first=10))["history"]
    assert actions(page) == ["model.archived"] and page["pageInfo"]["hasNextPage"]
