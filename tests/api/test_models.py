"""registerModel, updateModel, archive/restore/delete, tags, and the model queries."""

from tests import factories
from tests.conftest import Api

MODEL = """
query($project: String!, $name: String!) {
  model(project: $project, name: $name) {
    id name description owner task archivedAt tags { key value } project { name }
    latestVersion { number } productionVersion { number }
  }
}
"""


async def test_registered_model_is_found_by_project_and_name(api: Api) -> None:
    await factories.project(api)
    await factories.model(
        api,
        description="Scores card payments",
        task="classification",
        tags=[{"key": "team", "value": "risk"}],
    )
    data = await api(MODEL, project="fraud", name="fraud-detector")
    model = data["model"]
    assert model["description"] == "Scores card payments"
    assert model["owner"] == "tester"
    assert model["task"] == "classification"
    assert model["tags"] == [{"key": "team", "value": "risk"}]
    assert model["project"] == {"name": "fraud"}
    assert model["latestVersion"] is None


async def test_unknown_model_is_null(api: Api) -> None:
    await factories.project(api)
    assert (await api(MODEL, project="fraud", name="nope"))["model"] is None


async def test_same_name_twice_in_a_project_is_already_exists(api: Api) -> None:
    await factories.project(api)
    await factories.model(api)
    code, message = await api.error(
        factories.REGISTER, input={"project": "fraud", "name": "fraud-detector"}
    )
    assert code == "ALREADY_EXISTS"
    assert "fraud-detector" in message


async def test_same_name_in_two_projects_is_fine(api: Api) -> None:
    await factories.project(api, "fraud")
    await factories.project(api, "search")
    await factories.model(api, project="fraud")
    await factories.model(api, project="search")


async def test_unknown_project_is_not_found(api: Api) -> None:
    code, _ = await api.error(factories.REGISTER, input={"project": "ghost", "name": "m"})
    assert code == "NOT_FOUND"


async def test_bad_names_are_invalid(api: Api) -> None:
    await factories.project(api)
    for name in ["", "has space", "-leading-dash", "x" * 201, "semi;colon"]:
        code, message = await api.error(
            factories.REGISTER, input={"project": "fraud", "name": name}
        )
        assert code == "INVALID_ARGUMENT", (name, message)


async def test_ten_megabyte_description_is_invalid_and_writes_nothing(api: Api) -> None:
    await factories.project(api)
    code, message = await api.error(
        factories.REGISTER,
        input={"project": "fraud", "name": "big", "description": "x" * 10_000_000},
    )
    assert code == "INVALID_ARGUMENT"
    assert "description" in message
    assert (await api(MODEL, project="fraud", name="big"))["model"] is None


async def test_unknown_task_is_invalid(api: Api) -> None:
    await factories.project(api)
    code, message = await api.error(
        factories.REGISTER, input={"project": "fraud", "name": "m", "task": "astrology"}
    )
    assert code == "INVALID_ARGUMENT"
    assert "classification" in message


UPDATE = """
mutation($input: UpdateModelInput!) { updateModel(input: $input) { model { description owner task } } }
"""


async def test_update_changes_only_the_given_fields(api: Api) -> None:
    await factories.project(api)
    model = await factories.model(api, description="old", task="regression")
    data = await api(UPDATE, input={"id": model["id"], "description": "new"})
    assert data["updateModel"]["model"] == {
        "description": "new",
        "owner": "tester",
        "task": "regression",
    }
    data = await api(UPDATE, input={"id": model["id"], "task": None})
    assert data["updateModel"]["model"]["task"] is None


async def test_update_with_the_id_of_another_type_is_invalid(api: Api) -> None:
    catalog = await factories.catalog(api)
    code, message = await api.error(
        UPDATE, input={"id": catalog["version"]["id"], "description": "x"}
    )
    assert code == "INVALID_ARGUMENT"
    assert "ModelVersion" in message


async def test_update_with_a_garbage_id_is_invalid(api: Api) -> None:
    code, _ = await api.error(UPDATE, input={"id": "not-an-id", "description": "x"})
    assert code == "INVALID_ARGUMENT"


LIST = """
query($filter: ModelFilter) { models(filter: $filter) { totalCount edges { node { name } } } }
"""
ARCHIVE = "mutation($id: ID!) { archiveModel(input: {id: $id}) { model { archivedAt } } }"
RESTORE = "mutation($id: ID!) { restoreModel(input: {id: $id}) { model { archivedAt } } }"
DELETE = "mutation($id: ID!) { deleteModel(input: {id: $id}) { deletedId } }"


async def test_archived_models_leave_lists_until_restored(api: Api) -> None:
    await factories.project(api)
    model = await factories.model(api)
    await factories.model(api, name="other")
    data = await api(ARCHIVE, id=model["id"])
    assert data["archiveModel"]["model"]["archivedAt"] is not None
    names = [e["node"]["name"] for e in (await api(LIST))["models"]["edges"]]
    assert names == ["other"]
    everything = await api(LIST, filter={"includeArchived": True})
    assert everything["models"]["totalCount"] == 2
    await api(RESTORE, id=model["id"])
    assert (await api(LIST))["models"]["totalCount"] == 2


async def test_deleted_model_is_gone_but_its_journal_stays(api: Api) -> None:
    catalog = await factories.catalog(api)
    await api(DELETE, id=catalog["model"]["id"])
    assert (await api(MODEL, project="fraud", name="fraud-detector"))["model"] is None
    node = await api("query($id: ID!) { node(id: $id) { id } }", id=catalog["version"]["id"])
    assert node["node"] is None
    log = await api(
        "query($id: ID!) { auditLog(filter: {entity: $id}) { edges { node { action } } } }",
        id=catalog["model"]["id"],
    )
    actions = [e["node"]["action"] for e in log["auditLog"]["edges"]]
    assert actions == ["model.deleted", "model.registered"]


async def test_deleting_an_unknown_model_is_not_found(api: Api) -> None:
    catalog = await factories.catalog(api)
    await api(DELETE, id=catalog["model"]["id"])
    code, _ = await api.error(DELETE, id=catalog["model"]["id"])
    assert code == "NOT_FOUND"


SET_TAGS = """
mutation($input: SetTagsInput!) { setTags(input: $input) { node { ... on Model { tags { key value } } } } }
"""
REMOVE_TAGS = """
mutation($input: RemoveTagsInput!) {
  removeTags(input: $input) { node { ... on Model { tags { key value } } } }
}
"""


async def test_tags_are_set_overwritten_and_removed(api: Api) -> None:
    await factories.project(api)
    model = await factories.model(api, tags=[{"key": "team", "value": "risk"}])
    data = await api(
        SET_TAGS,
        input={
            "id": model["id"],
            "tags": [{"key": "team", "value": "fraud"}, {"key": "pii", "value": "true"}],
        },
    )
    assert data["setTags"]["node"]["tags"] == [
        {"key": "pii", "value": "true"},
        {"key": "team", "value": "fraud"},
    ]
    data = await api(REMOVE_TAGS, input={"id": model["id"], "keys": ["team", "absent"]})
    assert data["removeTags"]["node"]["tags"] == [{"key": "pii", "value": "true"}]


async def test_models_filter_by_tag_and_name(api: Api) -> None:
    await factories.project(api)
    await factories.model(api, name="a-fraud", tags=[{"key": "pii", "value": "true"}])
    await factories.model(api, name="b-churn", tags=[{"key": "pii", "value": "false"}])
    data = await api(LIST, filter={"tag": {"key": "pii", "value": "true"}})
    assert [e["node"]["name"] for e in data["models"]["edges"]] == ["a-fraud"]
    data = await api(LIST, filter={"nameContains": "CHURN"})
    assert [e["node"]["name"] for e in data["models"]["edges"]] == ["b-churn"]
    data = await api(LIST, filter={"nameContains": "%"})
    assert data["models"]["edges"] == []
