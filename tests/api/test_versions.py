"""createModelVersion, updateModelVersion, deleteModelVersion, metrics, stages, aliases and comments."""

import math

import pytest

from tests import factories
from tests.conftest import Api

VERSION = """
query($id: ID!) {
  node(id: $id) {
    ... on ModelVersion {
      number version stage aliases framework hyperparameters
      artifact { uri format size sha256 }
      code { repository commit path }
      environment { pythonVersion packages { name version } containerImage }
      tags { key value }
      holdout: metric(name: "accuracy", dataset: "holdout")
      train: metric(name: "accuracy", dataset: "train")
      metrics { totalCount edges { node { name value step dataset } } }
      model { name }
    }
  }
}
"""


async def test_version_numbers_count_up_per_model(api: Api) -> None:
    await factories.project(api)
    first = await factories.model(api, name="a")
    second = await factories.model(api, name="b")
    numbers = [(await factories.version(api, first["id"]))["number"] for _ in range(3)]
    assert numbers == [1, 2, 3]
    assert (await factories.version(api, second["id"]))["number"] == 1


async def test_a_full_version_reads_back(api: Api) -> None:
    await factories.project(api)
    model = await factories.model(api)
    sha = "a" * 64
    created = await factories.version(
        api,
        model["id"],
        version="1.2.0-rc.1",
        stage="STAGING",
        framework="xgboost",
        hyperparameters={"max_depth": 6, "eta": 0.3},
        artifact={"uri": "s3://m/1", "format": "onnx", "size": 5_000_000_000, "sha256": sha},
        code={"repository": "https://git.example/fraud", "commit": "0123abc", "path": "train.py"},
        environment={
            "pythonVersion": "3.11",
            "packages": [{"name": "xgboost", "version": "2.1.0"}],
        },
        tags=[{"key": "pii", "value": "false"}],
        metrics=[
            {"name": "accuracy", "value": 0.93, "dataset": "holdout"},
            {"name": "accuracy", "value": 0.99, "dataset": "train"},
        ],
    )
    version = (await api(VERSION, id=created["id"]))["node"]
    assert version["number"] == 1
    assert version["version"] == "1.2.0-rc.1"
    assert version["stage"] == "STAGING"
    assert version["hyperparameters"] == {"max_depth": 6, "eta": 0.3}
    assert version["artifact"] == {"uri": "s3://m/1", "format": "onnx", "size": 5e9, "sha256": sha}
    assert version["code"]["commit"] == "0123abc"
    assert version["environment"]["packages"] == [{"name": "xgboost", "version": "2.1.0"}]
    assert version["tags"] == [{"key": "pii", "value": "false"}]
    assert (version["holdout"], version["train"]) == (0.93, 0.99)
    assert version["metrics"]["totalCount"] == 2
    assert version["model"] == {"name": "fraud-detector"}


@pytest.mark.parametrize("semver", ["1", "1.2", "v1.2.3", "01.2.3", "1.2.3-", "1.2.3+", "x" * 200])
async def test_invalid_semantic_versions_are_refused(api: Api, semver: str) -> None:
    catalog = await factories.catalog(api)
    code, message = await api.error(
        factories.CREATE_VERSION, input={"model": catalog["model"]["id"], "version": semver}
    )
    assert code == "INVALID_ARGUMENT"
    assert "semantic version" in message


async def test_a_semantic_version_is_unique_per_model(api: Api) -> None:
    await factories.project(api)
    model = await factories.model(api)
    await factories.version(api, model["id"], version="1.0.0")
    code, _ = await api.error(
        factories.CREATE_VERSION, input={"model": model["id"], "version": "1.0.0"}
    )
    assert code == "ALREADY_EXISTS"
    # The refused version took no number: the next one is 2.
    assert (await factories.version(api, model["id"], version="1.0.1"))["number"] == 2


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf])
async def test_non_finite_metric_values_are_refused(api: Api, value: float) -> None:
    catalog = await factories.catalog(api)
    code, _ = await api.error(
        "mutation($input: LogMetricsInput!) { logMetrics(input: $input) { modelVersion { number } } }",
        input={"id": catalog["version"]["id"], "metrics": [{"name": "auc", "value": value}]},
    )
    assert code == "INVALID_ARGUMENT"


@pytest.mark.parametrize("hyperparameters", [[1, 2], "max_depth=6", 3, {"lr": math.nan}])
async def test_hyperparameters_must_be_a_json_object(api: Api, hyperparameters: object) -> None:
    catalog = await factories.catalog(api)
    code, _ = await api.error(
        factories.CREATE_VERSION,
        input={"model": catalog["model"]["id"], "hyperparameters": hyperparameters},
    )
    assert code == "INVALID_ARGUMENT"


async def test_unknown_model_id_is_not_found(api: Api) -> None:
    catalog = await factories.catalog(api)
    await api(
        "mutation($id: ID!) { deleteModel(input: {id: $id}) { deletedId } }",
        id=catalog["model"]["id"],
    )
    code, _ = await api.error(factories.CREATE_VERSION, input={"model": catalog["model"]["id"]})
    assert code == "NOT_FOUND"


async def test_archived_model_takes_no_new_version(api: Api) -> None:
    catalog = await factories.catalog(api)
    await api(
        "mutation($id: ID!) { archiveModel(input: {id: $id}) { model { id } } }",
        id=catalog["model"]["id"],
    )
    code, _ = await api.error(factories.CREATE_VERSION, input={"model": catalog["model"]["id"]})
    assert code == "FAILED_PRECONDITION"


LOG = """
mutation($input: LogMetricsInput!) {
  logMetrics(input: $input) { modelVersion { auc: metric(name: "auc", dataset: "holdout") } }
}
"""


async def test_the_newest_step_of_a_metric_is_its_value(api: Api) -> None:
    catalog = await factories.catalog(api)
    vid = catalog["version"]["id"]
    await api(
        LOG,
        input={
            "id": vid,
            "metrics": [{"name": "auc", "value": 0.8, "step": 2, "dataset": "holdout"}],
        },
    )
    data = await api(
        LOG,
        input={
            "id": vid,
            "metrics": [{"name": "auc", "value": 0.7, "step": 1, "dataset": "holdout"}],
        },
    )
    assert data["logMetrics"]["modelVersion"]["auc"] == 0.8


STAGE = """
mutation($input: SetModelVersionStageInput!) {
  setModelVersionStage(input: $input) { modelVersion { number stage } archived { number stage } }
}
"""


async def test_second_production_version_archives_the_first(api: Api) -> None:
    await factories.project(api)
    model = await factories.model(api)
    v1 = await factories.version(api, model["id"], stage="PRODUCTION")
    v2 = await factories.version(api, model["id"], stage="STAGING")
    data = await api(STAGE, input={"id": v2["id"], "stage": "PRODUCTION"})
    assert data["setModelVersionStage"] == {
        "modelVersion": {"number": 2, "stage": "PRODUCTION"},
        "archived": [{"number": 1, "stage": "ARCHIVED"}],
    }
    production = await api(
        'query { model(project: "fraud", name: "fraud-detector") { productionVersion { number } } }'
    )
    assert production["model"]["productionVersion"] == {"number": 2}
    assert (await api(VERSION, id=v1["id"]))["node"]["stage"] == "ARCHIVED"


async def test_unknown_stage_is_invalid(api: Api) -> None:
    catalog = await factories.catalog(api)
    code, _ = await api.error(STAGE, input={"id": catalog["version"]["id"], "stage": "LIVE"})
    assert code == "INVALID_ARGUMENT"


ALIAS = """
mutation($input: SetAliasInput!) { setAlias(input: $input) { modelVersion { number aliases } } }
"""


async def test_an_alias_moves_to_the_version_it_is_given(api: Api) -> None:
    await factories.project(api)
    model = await factories.model(api)
    v1 = await factories.version(api, model["id"])
    v2 = await factories.version(api, model["id"])
    await api(ALIAS, input={"id": v1["id"], "alias": "champion"})
    data = await api(ALIAS, input={"id": v2["id"], "alias": "champion"})
    assert data["setAlias"]["modelVersion"] == {"number": 2, "aliases": ["champion"]}
    assert (await api(VERSION, id=v1["id"]))["node"]["aliases"] == []
    aliases = await api(
        'query { model(project: "fraud", name: "fraud-detector") { aliases { name version { number } } } }'
    )
    assert aliases["model"]["aliases"] == [{"name": "champion", "version": {"number": 2}}]


async def test_removing_an_absent_alias_is_not_found(api: Api) -> None:
    catalog = await factories.catalog(api)
    code, _ = await api.error(
        'mutation($m: ID!) { removeAlias(input: {model: $m, alias: "champion"}) { model { name } } }',
        m=catalog["model"]["id"],
    )
    assert code == "NOT_FOUND"


@pytest.mark.parametrize("alias", ["latest", "3", "bad alias"])
async def test_reserved_or_malformed_aliases_are_invalid(api: Api, alias: str) -> None:
    catalog = await factories.catalog(api)
    code, _ = await api.error(ALIAS, input={"id": catalog["version"]["id"], "alias": alias})
    assert code == "INVALID_ARGUMENT"


async def test_comments_are_listed_oldest_first(api: Api) -> None:
    catalog = await factories.catalog(api)
    add = """mutation($id: ID!, $body: String!) {
      addComment(input: {id: $id, body: $body}) { comment { body createdBy } } }"""
    await api(add, id=catalog["version"]["id"], body="looks good")
    await api(add, id=catalog["version"]["id"], body="ship it")
    data = await api(
        "query($id: ID!) { node(id: $id) { ... on ModelVersion { comments { totalCount edges { node { body } } } } } }",
        id=catalog["version"]["id"],
    )
    comments = data["node"]["comments"]
    assert comments["totalCount"] == 2
    assert [e["node"]["body"] for e in comments["edges"]] == ["looks good", "ship it"]
    code, _ = await api.error(add, id=catalog["version"]["id"], body="   ")
    assert code == "INVALID_ARGUMENT"


async def test_update_model_version_changes_semver_and_checks_it(api: Api) -> None:
    catalog = await factories.catalog(api)
    update = """mutation($input: UpdateModelVersionInput!) {
      updateModelVersion(input: $input) { modelVersion { version description } } }"""
    data = await api(update, input={"id": catalog["version"]["id"], "version": "2.0.0"})
    assert data["updateModelVersion"]["modelVersion"] == {"version": "2.0.0", "description": ""}
    code, _ = await api.error(update, input={"id": catalog["version"]["id"], "version": "two"})
    assert code == "INVALID_ARGUMENT"


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
