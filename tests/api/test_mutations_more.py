"""The mutations not covered elsewhere: projects, version deletion, alias removal, tags on
versions and datasets, and the audit log's filters."""

from tests import factories
from tests.conftest import Api


async def test_create_project_and_its_failures(api: Api) -> None:
    created = await factories.project(api, "fraud")
    assert created["name"] == "fraud"
    code, _ = await api.error(factories.PROJECT, name="fraud")
    assert code == "ALREADY_EXISTS"
    code, _ = await api.error(factories.PROJECT, name="")
    assert code == "INVALID_ARGUMENT"
    projects = await api("{ projects { totalCount edges { node { name } } } }")
    assert projects["projects"]["totalCount"] == 1


async def test_delete_model_version_keeps_the_numbers_of_the_others(api: Api) -> None:
    await factories.project(api)
    model = await factories.model(api)
    v1 = await factories.version(api, model["id"])
    await factories.version(api, model["id"])
    delete = "mutation($id: ID!) { deleteModelVersion(input: {id: $id}) { deletedId } }"
    assert (await api(delete, id=v1["id"]))["deleteModelVersion"]["deletedId"] == v1["id"]
    # Numbers are never reused: the next version is 3, not 1.
    assert (await factories.version(api, model["id"]))["number"] == 3
    code, _ = await api.error(delete, id=v1["id"])
    assert code == "NOT_FOUND"


async def test_remove_alias(api: Api) -> None:
    catalog = await factories.catalog(api)
    await api(
        'mutation($id: ID!) { setAlias(input: {id: $id, alias: "champion"}) { modelVersion { id } } }',
        id=catalog["version"]["id"],
    )
    data = await api(
        'mutation($m: ID!) { removeAlias(input: {model: $m, alias: "champion"}) { model { aliases { name } } } }',
        m=catalog["model"]["id"],
    )
    assert data["removeAlias"]["model"]["aliases"] == []


async def test_tags_on_versions_and_datasets(api: Api) -> None:
    catalog = await factories.catalog(api)
    dataset = await factories.dataset(api)
    set_tags = """mutation($input: SetTagsInput!) { setTags(input: $input) { node {
      ... on ModelVersion { tags { key value } } ... on Dataset { tags { key value } } } } }"""
    for node in (catalog["version"]["id"], dataset["id"]):
        data = await api(set_tags, input={"id": node, "tags": [{"key": "pii", "value": "true"}]})
        assert data["setTags"]["node"]["tags"] == [{"key": "pii", "value": "true"}]
    run = await factories.run(api)
    code, _ = await api.error(set_tags, input={"id": run["id"], "tags": []})
    assert code == "INVALID_ARGUMENT"
    code, _ = await api.error(
        set_tags, input={"id": dataset["id"], "tags": [{"key": "bad key", "value": "x"}]}
    )
    assert code == "INVALID_ARGUMENT"


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
