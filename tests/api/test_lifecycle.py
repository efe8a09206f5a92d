"""The lifecycle: stage moves, production's lock, rollbackProduction, per-stage permissions,
deployments, and stage and alias history read from the journal."""

from pathlib import Path
from typing import Any

import pytest

from mlcatalog.auth.access import Policy, access_of
from mlcatalog.auth.principal import Method, Principal
from tests import factories
from tests.conftest import Api
from tests.policies import policy_in

STAGE = """
mutation($input: SetModelVersionStageInput!) {
  setModelVersionStage(input: $input) { modelVersion { number stage } archived { number } }
}
"""
UPDATE_MODEL = """
mutation($input: UpdateModelInput!) { updateModel(input: $input) { model { allowsSeveralInProduction } } }
"""
ROLLBACK = """
mutation($input: RollbackProductionInput!) {
  rollbackProduction(input: $input) { modelVersion { number stage } archived { number stage } }
}
"""
RECORD = """
mutation($input: RecordDeploymentInput!) {
  recordDeployment(input: $input) {
    deployment { id environment endpoint status trafficShare createdBy version { number } }
  }
}
"""
UPDATE_DEPLOYMENT = """
mutation($input: UpdateDeploymentInput!) {
  updateDeployment(input: $input) { deployment { status trafficShare updatedBy } }
}
"""
REMOVE_DEPLOYMENT = """
mutation($input: RemoveDeploymentInput!) {
  removeDeployment(input: $input) { deletedId modelVersion { number } }
}
"""
ALIAS = "mutation($input: SetAliasInput!) { setAlias(input: $input) { modelVersion { number } } }"


async def move(api: Api, version: dict[str, Any], *stages: str) -> dict[str, Any]:
    data: dict[str, Any] = {}
    for stage in stages:
        data = await api(STAGE, input={"id": version["id"], "stage": stage})
    return data["setModelVersionStage"]


async def model_with(api: Api, count: int) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    await factories.project(api)
    model = await factories.model(api)
    versions = [await factories.version(api, model["id"]) for _ in range(count)]
    return model, versions


async def model_query(api: Api, fields: str, **variables: Any) -> dict[str, Any]:
    declared = ", ".join(f"${k}: {t}" for k, (t, _) in variables.items())
    text = f'query{f"({declared})" if declared else ""} {{ model(project: "fraud", name: "fraud-detector") {{ {fields} }} }}'
    data = await api(text, **{k: v for k, (_, v) in variables.items()})
    return dict(data["model"])


# ---- stage moves ------------------------------------------------------------------------------


async def test_a_version_climbs_one_stage_at_a_time_to_production(api: Api) -> None:
    _, (v1,) = await model_with(api, 1)
    moved = await move(api, v1, "DEVELOPMENT", "STAGING", "PRODUCTION")
    assert moved == {"modelVersion": {"number": 1, "stage": "PRODUCTION"}, "archived": []}


async def test_skipping_a_stage_is_refused_naming_the_moves_allowed(api: Api) -> None:
    _, (v1,) = await model_with(api, 1)
    code, message = await api.error(STAGE, input={"id": v1["id"], "stage": "PRODUCTION"})
    assert code == "FAILED_PRECONDITION"
    assert message == (
        "version 1 is in NONE: it may move to DEVELOPMENT or ARCHIVED, not PRODUCTION"
    )


async def test_production_may_be_demoted_to_staging_but_not_to_development(api: Api) -> None:
    _, (v1,) = await model_with(api, 1)
    await move(api, v1, "DEVELOPMENT", "STAGING", "PRODUCTION")
    code, message = await api.error(STAGE, input={"id": v1["id"], "stage": "DEVELOPMENT"})
    assert (code, message) == (
        "FAILED_PRECONDITION",
        "version 1 is in PRODUCTION: it may move to STAGING or ARCHIVED, not DEVELOPMENT",
    )
    assert (await move(api, v1, "STAGING"))["modelVersion"]["stage"] == "STAGING"


async def test_an_archived_version_is_restored_to_development_only(api: Api) -> None:
    _, (v1,) = await model_with(api, 1)
    await move(api, v1, "ARCHIVED")
    code, message = await api.error(STAGE, input={"id": v1["id"], "stage": "STAGING"})
    assert code == "FAILED_PRECONDITION"
    assert "may move to DEVELOPMENT, not STAGING" in message
    assert (await move(api, v1, "DEVELOPMENT"))["modelVersion"]["stage"] == "DEVELOPMENT"


async def test_promotion_archives_the_previous_production_version(api: Api) -> None:
    _, (v1, v2) = await model_with(api, 2)
    await move(api, v1, "DEVELOPMENT", "STAGING", "PRODUCTION")
    moved = await move(api, v2, "DEVELOPMENT", "STAGING", "PRODUCTION")
    assert moved["archived"] == [{"number": 1}]
    data = await model_query(
        api, "productionVersion { number } versions { edges { node { stage } } }"
    )
    assert data["productionVersion"] == {"number": 2}
    assert [e["node"]["stage"] for e in data["versions"]["edges"]] == ["PRODUCTION", "ARCHIVED"]


async def test_archive_others_archives_the_versions_already_in_staging(api: Api) -> None:
    _, (v1, v2) = await model_with(api, 2)
    await move(api, v1, "DEVELOPMENT", "STAGING")
    await move(api, v2, "DEVELOPMENT")
    moved = await api(STAGE, input={"id": v2["id"], "stage": "STAGING", "archiveOthers": True})
    assert moved["setModelVersionStage"]["archived"] == [{"number": 1}]


async def test_a_second_version_cannot_be_created_in_production(api: Api) -> None:
    model, _ = await model_with(api, 0)
    await factories.version(api, model["id"], stage="PRODUCTION")
    code, message = await api.error(
        factories.CREATE_VERSION, input={"model": model["id"], "stage": "PRODUCTION"}
    )
    assert code == "FAILED_PRECONDITION"
    assert message.startswith("version 1 is in PRODUCTION and model 'fraud-detector' allows one")


async def test_a_model_that_allows_several_keeps_both_in_production(api: Api) -> None:
    model, (v1, v2) = await model_with(api, 2)
    data = await api(UPDATE_MODEL, input={"id": model["id"], "allowsSeveralInProduction": True})
    assert data["updateModel"]["model"] == {"allowsSeveralInProduction": True}
    await move(api, v1, "DEVELOPMENT", "STAGING", "PRODUCTION")
    moved = await move(api, v2, "DEVELOPMENT", "STAGING", "PRODUCTION")
    assert moved["archived"] == []
    entries = await api(
        "query($id: ID!) { history(id: $id) { edges { node { action after } } } }", id=model["id"]
    )
    assert {"action": "model.updated", "after": {"allows_several_in_production": True}} in [
        e["node"] for e in entries["history"]["edges"]
    ]


async def test_allows_several_in_production_cannot_be_null(api: Api) -> None:
    model, _ = await model_with(api, 0)
    code, _ = await api.error(
        UPDATE_MODEL, input={"id": model["id"], "allowsSeveralInProduction": None}
    )
    assert code == "INVALID_ARGUMENT"


# ---- production's lock ------------------------------------------------------------------------

METRICS = """
mutation($input: LogMetricsInput!) { logMetrics(input: $input) { modelVersion { number } } }
"""
UPDATE_VERSION = """
mutation($input: UpdateModelVersionInput!) {
  updateModelVersion(input: $input) { modelVersion { description } }
}
"""
LINK = """
mutation($input: LinkLineageInput!) { linkLineage(input: $input) { edge { kind } } }
"""


async def test_a_production_version_refuses_metrics_until_it_leaves_the_stage(api: Api) -> None:
    _, (v1,) = await model_with(api, 1)
    await move(api, v1, "DEVELOPMENT", "STAGING", "PRODUCTION")
    metric = {"id": v1["id"], "metrics": [{"name": "auc", "value": 0.5, "dataset": "holdout"}]}
    code, message = await api.error(METRICS, input=metric)
    assert (code, message) == (
        "FAILED_PRECONDITION",
        "version 1 is in PRODUCTION: its metrics cannot change until it leaves the stage",
    )
    await move(api, v1, "STAGING")
    await api(METRICS, input=metric)


async def test_a_production_version_refuses_a_new_definition_but_not_a_description(
    api: Api,
) -> None:
    _, (v1,) = await model_with(api, 1)
    await move(api, v1, "DEVELOPMENT", "STAGING", "PRODUCTION")
    code, message = await api.error(
        UPDATE_VERSION, input={"id": v1["id"], "hyperparameters": {"depth": 3}}
    )
    assert code == "FAILED_PRECONDITION"
    assert "its hyperparameters cannot change" in message
    data = await api(UPDATE_VERSION, input={"id": v1["id"], "description": "serves EU traffic"})
    assert data["updateModelVersion"]["modelVersion"] == {"description": "serves EU traffic"}


async def test_a_production_version_refuses_new_training_lineage(api: Api) -> None:
    _, (v1,) = await model_with(api, 1)
    dataset = await factories.dataset(api)
    data = await factories.dataset_version(api, dataset["id"])
    await move(api, v1, "DEVELOPMENT", "STAGING", "PRODUCTION")
    link = {"kind": "TRAINED_ON", "upstream": data["id"], "downstream": v1["id"]}
    code, message = await api.error(LINK, input=link)
    assert code == "FAILED_PRECONDITION"
    assert "its lineage cannot change" in message
    await move(api, v1, "ARCHIVED")
    assert (await api(LINK, input=link))["linkLineage"]["edge"] == {"kind": "TRAINED_ON"}


# ---- rollbackProduction -----------------------------------------------------------------------


async def test_rollback_puts_the_replaced_version_back_and_archives_the_current(api: Api) -> None:
    model, (v1, v2) = await model_with(api, 2)
    await move(api, v1, "DEVELOPMENT", "STAGING", "PRODUCTION")
    await move(api, v2, "DEVELOPMENT", "STAGING", "PRODUCTION")
    data = await api(ROLLBACK, input={"model": model["id"]})
    assert data["rollbackProduction"] == {
        "modelVersion": {"number": 1, "stage": "PRODUCTION"},
        "archived": [{"number": 2, "stage": "ARCHIVED"}],
    }
    history = await model_query(
        api, "stageHistory(first: 2) { edges { node { from to rollback version { number } } } }"
    )
    assert [e["node"] for e in history["stageHistory"]["edges"]] == [
        {"from": "PRODUCTION", "to": "ARCHIVED", "rollback": False, "version": {"number": 2}},
        {"from": "ARCHIVED", "to": "PRODUCTION", "rollback": True, "version": {"number": 1}},
    ]
    # A second rollback undoes the first: v1's return replaced v2.
    again = await api(ROLLBACK, input={"model": model["id"]})
    assert again["rollbackProduction"]["modelVersion"] == {"number": 2, "stage": "PRODUCTION"}


async def test_rollback_without_a_replaced_version_is_refused(api: Api) -> None:
    model, (v1,) = await model_with(api, 1)
    code, message = await api.error(ROLLBACK, input={"model": model["id"]})
    assert (code, message) == (
        "FAILED_PRECONDITION",
        "model 'fraud-detector' has no version in PRODUCTION",
    )
    await move(api, v1, "DEVELOPMENT", "STAGING", "PRODUCTION")
    code, message = await api.error(ROLLBACK, input={"model": model["id"]})
    assert code == "FAILED_PRECONDITION"
    assert "replaced no production version" in message


async def test_rollback_refuses_when_the_replaced_version_has_moved_on(api: Api) -> None:
    model, (v1, v2) = await model_with(api, 2)
    await move(api, v1, "DEVELOPMENT", "STAGING", "PRODUCTION")
    await move(api, v2, "DEVELOPMENT", "STAGING", "PRODUCTION")
    await move(api, v1, "DEVELOPMENT")
    code, message = await api.error(ROLLBACK, input={"model": model["id"]})
    assert code == "FAILED_PRECONDITION"
    assert "is in DEVELOPMENT now" in message


LOG_METRICS = """
mutation($input: LogMetricsInput!) { logMetrics(input: $input) { modelVersion { number } } }
"""
LINK = "mutation($input: LinkLineageInput!) { linkLineage(input: $input) { edge { kind } } }"


@pytest.mark.parametrize("change", ["moved", "metrics", "lineage"])
async def test_rollback_refuses_a_replaced_version_changed_since(api: Api, change: str) -> None:
    # A rollback passes no gate: were v1 changed after v2 replaced it (here: taken out of
    # ARCHIVED and back, given new metrics, linked to training data), it would reach PRODUCTION
    # as a version no gate has seen.
    model, (v1, v2) = await model_with(api, 2)
    await move(api, v1, "DEVELOPMENT", "STAGING", "PRODUCTION")
    await move(api, v2, "DEVELOPMENT", "STAGING", "PRODUCTION")
    if change == "moved":
        await move(api, v1, "DEVELOPMENT", "ARCHIVED")
    elif change == "metrics":
        metrics = [{"name": "auc", "value": 0.99, "dataset": "holdout"}]
        await api(LOG_METRICS, input={"id": v1["id"], "metrics": metrics})
    else:
        dataset = await factories.dataset(api)
        data = await factories.dataset_version(api, dataset["id"])
        link = {"kind": "TRAINED_ON", "upstream": data["id"], "downstream": v1["id"]}
        await api(LINK, input=link)
    code, message = await api.error(ROLLBACK, input={"model": model["id"]})
    assert (code, message) == (
        "FAILED_PRECONDITION",
        "version 1 changed after version 2 replaced it: promote it through the gates instead",
    )


# ---- who may move a version into or out of a stage --------------------------------------------

PEOPLE = """
g, user:carol, contributor, fraud
g, user:grace, maintainer, fraud
"""


@pytest.fixture
def policy(tmp_path: Path) -> Policy:
    return Policy(policy_in(tmp_path / "policies", PEOPLE))


def as_user(api: Api, policy: Policy, subject: str) -> Api:
    principal = Principal(subject=subject, method=Method.BEARER)
    return Api(api.database, actor=subject, access=access_of(policy, principal))


async def test_a_contributor_moves_versions_below_production_only(api: Api, policy: Policy) -> None:
    _, (v1,) = await model_with(api, 1)
    carol = as_user(api, policy, "carol")
    assert (await move(carol, v1, "DEVELOPMENT", "STAGING"))["modelVersion"]["stage"] == "STAGING"
    code, message = await carol.error(STAGE, input={"id": v1["id"], "stage": "PRODUCTION"})
    assert (code, message) == (
        "FORBIDDEN",
        "the policy does not let you write Stage.PRODUCTION in project 'fraud'",
    )
    grace = as_user(api, policy, "grace")
    assert (await move(grace, v1, "PRODUCTION"))["modelVersion"]["stage"] == "PRODUCTION"
    # Out of PRODUCTION is refused to the contributor too, demotion or archiving alike.
    for stage in ("STAGING", "ARCHIVED"):
        code, _ = await carol.error(STAGE, input={"id": v1["id"], "stage": stage})
        assert code == "FORBIDDEN"


async def test_a_contributor_cannot_create_a_version_in_production(
    api: Api, policy: Policy
) -> None:
    model, _ = await model_with(api, 0)
    carol = as_user(api, policy, "carol")
    code, _ = await carol.error(
        factories.CREATE_VERSION, input={"model": model["id"], "stage": "PRODUCTION"}
    )
    assert code == "FORBIDDEN"
    await factories.version(carol, model["id"], stage="DEVELOPMENT")


async def test_a_contributor_cannot_delete_a_model_with_a_version_in_production(
    api: Api, policy: Policy
) -> None:
    await factories.project(api)
    carol = as_user(api, policy, "carol")
    model = await factories.model(carol)
    version = await factories.version(carol, model["id"], stage="STAGING")
    await move(as_user(api, policy, "grace"), version, "PRODUCTION")
    delete = "mutation($input: DeleteModelInput!) { deleteModel(input: $input) { deletedId } }"
    code, message = await carol.error(delete, input={"id": model["id"]})
    assert (code, message) == (
        "FORBIDDEN",
        "the policy does not let you write Stage.PRODUCTION in project 'fraud'",
    )


# ---- deployments ------------------------------------------------------------------------------


async def deployed(api: Api, version: dict[str, Any], **fields: Any) -> dict[str, Any]:
    given = {
        "version": version["id"],
        "environment": "production",
        "endpoint": "https://fraud.example.com/v1/score",
        **fields,
    }
    return dict((await api(RECORD, input=given))["recordDeployment"]["deployment"])


async def test_a_deployment_is_recorded_updated_and_removed(api: Api) -> None:
    _, (v1,) = await model_with(api, 1)
    deployment = await deployed(api, v1, trafficShare=0.25, status="PENDING")
    assert {k: v for k, v in deployment.items() if k != "id"} == {
        "environment": "production",
        "endpoint": "https://fraud.example.com/v1/score",
        "status": "PENDING",
        "trafficShare": 0.25,
        "createdBy": "tester",
        "version": {"number": 1},
    }
    updated = await api(
        UPDATE_DEPLOYMENT, input={"id": deployment["id"], "status": "ACTIVE", "trafficShare": 1}
    )
    assert updated["updateDeployment"]["deployment"] == {
        "status": "ACTIVE",
        "trafficShare": 1.0,
        "updatedBy": "tester",
    }
    removed = await api(REMOVE_DEPLOYMENT, input={"id": deployment["id"]})
    assert removed["removeDeployment"] == {
        "deletedId": deployment["id"],
        "modelVersion": {"number": 1},
    }
    entries = await api(
        "query($id: ID!) { history(id: $id) { edges { node { action } } } }", id=deployment["id"]
    )
    assert [e["node"]["action"] for e in entries["history"]["edges"]] == [
        "deployment.removed",
        "deployment.updated",
        "deployment.recorded",
    ]


@pytest.mark.parametrize(
    "endpoint",
    [
        "fraud.example.com/score",  # no scheme
        "ftp://fraud.example.com/score",
        "https://user:secret@fraud.example.com/score",
        "https://fraud.example.com/a b",
        "https:///no-host",
        "https://fraud.example.com:99999/",
        "https://" + "a" * 2000 + ".com",
    ],
)
async def test_an_endpoint_must_be_a_plain_url(api: Api, endpoint: str) -> None:
    _, (v1,) = await model_with(api, 1)
    given = {"version": v1["id"], "environment": "production", "endpoint": endpoint}
    code, message = await api.error(RECORD, input=given)
    assert code == "INVALID_ARGUMENT"
    assert "secret" not in message


async def test_traffic_shares_at_one_endpoint_add_up_to_at_most_one(api: Api) -> None:
    _, (v1, v2) = await model_with(api, 2)
    await deployed(api, v1, trafficShare=0.7)
    code, message = await api.error(
        RECORD,
        input={
            "version": v2["id"],
            "environment": "production",
            "endpoint": "https://fraud.example.com/v1/score",
            "trafficShare": 0.4,
        },
    )
    assert code == "FAILED_PRECONDITION"
    assert "already take 0.7 of its traffic" in message
    assert (await deployed(api, v2, trafficShare=0.3))["trafficShare"] == 0.3
    code, _ = await api.error(
        RECORD,
        input={
            "version": v2["id"],
            "environment": "eu",
            "endpoint": "https://a.example",
            "trafficShare": 1.5,
        },
    )
    assert code == "INVALID_ARGUMENT"


async def test_the_same_deployment_twice_already_exists(api: Api) -> None:
    _, (v1,) = await model_with(api, 1)
    await deployed(api, v1, trafficShare=0.5)
    code, _ = await api.error(
        RECORD,
        input={
            "version": v1["id"],
            "environment": "production",
            "endpoint": "https://fraud.example.com/v1/score",
            "trafficShare": 0.1,
        },
    )
    assert code == "ALREADY_EXISTS"


async def test_only_maintainers_record_deployments(api: Api, policy: Policy) -> None:
    _, (v1,) = await model_with(api, 1)
    given = {"version": v1["id"], "environment": "production", "endpoint": "https://a.example"}
    code, _ = await as_user(api, policy, "carol").error(RECORD, input=given)
    assert code == "FORBIDDEN"
    grace = as_user(api, policy, "grace")
    recorded = await grace(RECORD, input=given)
    assert recorded["recordDeployment"]["deployment"]["createdBy"] == "grace"


async def test_an_archived_version_cannot_be_deployed(api: Api) -> None:
    _, (v1,) = await model_with(api, 1)
    await move(api, v1, "ARCHIVED")
    code, message = await api.error(
        RECORD,
        input={"version": v1["id"], "environment": "production", "endpoint": "https://a.example"},
    )
    assert (code, message) == (
        "FAILED_PRECONDITION",
        "version 1 is ARCHIVED: restore it before deploying it",
    )


async def test_what_runs_in_production_trained_on_what_moved_by_whom_is_one_query(
    api: Api,
) -> None:
    _, (v1,) = await model_with(api, 1)
    dataset = await factories.dataset(api)
    data = await factories.dataset_version(api, dataset["id"], label="2026-11")
    link = {"kind": "TRAINED_ON", "upstream": data["id"], "downstream": v1["id"]}
    await api(LINK, input=link)
    await move(api, v1, "DEVELOPMENT", "STAGING", "PRODUCTION")
    await deployed(api, v1)
    answer = await model_query(
        api,
        """deployments(environment: "production", statuses: [ACTIVE]) { edges { node {
             endpoint version { number stage datasets(role: TRAINING) { label }
               stageHistory(first: 1) { edges { node { to actor approval } } } } } } }""",
    )
    assert answer["deployments"]["edges"] == [
        {
            "node": {
                "endpoint": "https://fraud.example.com/v1/score",
                "version": {
                    "number": 1,
                    "stage": "PRODUCTION",
                    "datasets": [{"label": "2026-11"}],
                    "stageHistory": {
                        "edges": [
                            {"node": {"to": "PRODUCTION", "actor": "tester", "approval": None}}
                        ]
                    },
                },
            }
        }
    ]


# ---- history from the journal -----------------------------------------------------------------


async def test_stage_history_lists_every_move_newest_first(api: Api) -> None:
    _, (v1, v2) = await model_with(api, 2)
    await move(api, v1, "DEVELOPMENT", "STAGING", "PRODUCTION")
    await move(api, v2, "DEVELOPMENT")
    data = await api(
        "query($id: ID!) { node(id: $id) { ... on ModelVersion { stageHistory { edges { node {"
        " from to actor } } } } } }",
        id=v1["id"],
    )
    assert [e["node"] for e in data["node"]["stageHistory"]["edges"]] == [
        {"from": "STAGING", "to": "PRODUCTION", "actor": "tester"},
        {"from": "DEVELOPMENT", "to": "STAGING", "actor": "tester"},
        {"from": "NONE", "to": "DEVELOPMENT", "actor": "tester"},
        {"from": None, "to": "NONE", "actor": "tester"},
    ]
    model = await model_query(
        api,
        "stageHistory(first: 2) { edges { node { version { number } to } } pageInfo { hasNextPage } }",
    )
    assert [e["node"] for e in model["stageHistory"]["edges"]] == [
        {"version": {"number": 2}, "to": "DEVELOPMENT"},
        {"version": {"number": 1}, "to": "PRODUCTION"},
    ]
    assert model["stageHistory"]["pageInfo"] == {"hasNextPage": True}


async def test_production_version_as_of_a_moment_names_who_moved_it(api: Api) -> None:
    _, (v1, v2) = await model_with(api, 2)
    await move(api, v1, "DEVELOPMENT", "STAGING", "PRODUCTION")
    await move(api, v2, "DEVELOPMENT", "STAGING", "PRODUCTION")
    history = await model_query(api, "stageHistory { edges { node { at to version { number } } } }")
    promotions = [
        e["node"]["at"] for e in history["stageHistory"]["edges"] if e["node"]["to"] == "PRODUCTION"
    ]
    second, first = promotions
    fields = "productionVersion(asOf: $at) { number } productionMove(asOf: $at) { actor from }"
    at_first = await model_query(api, fields, at=("DateTime", first))
    assert at_first == {
        "productionVersion": {"number": 1},
        "productionMove": {"actor": "tester", "from": "STAGING"},
    }
    at_second = await model_query(api, fields, at=("DateTime", second))
    assert at_second["productionVersion"] == {"number": 2}
    before = await model_query(api, fields, at=("DateTime", "2000-01-01T00:00:00+00:00"))
    assert before == {"productionVersion": None, "productionMove": None}


async def test_alias_as_of_a_moment_and_its_history(api: Api) -> None:
    model, (v1, v2) = await model_with(api, 2)
    await api(ALIAS, input={"id": v1["id"], "alias": "champion"})
    await api(ALIAS, input={"id": v2["id"], "alias": "champion"})
    history = await model_query(
        api,
        "aliasHistory { edges { node { alias at version { number } previousVersion { number } } } }",
    )
    moved, set_ = [e["node"] for e in history["aliasHistory"]["edges"]]
    assert (moved["version"], moved["previousVersion"]) == ({"number": 2}, {"number": 1})
    assert (set_["version"], set_["previousVersion"]) == ({"number": 1}, None)
    fields = 'alias(name: "champion", asOf: $at) { actor version { number } }'
    then = await model_query(api, fields, at=("DateTime", set_["at"]))
    assert then["alias"] == {"actor": "tester", "version": {"number": 1}}
    now = await model_query(api, 'alias(name: "champion") { version { number } }')
    assert now["alias"] == {"version": {"number": 2}}
    none = await model_query(api, 'alias(name: "challenger") { version { number } }')
    assert none["alias"] is None
    await api(
        "mutation($input: RemoveAliasInput!) { removeAlias(input: $input) { model { id } } }",
        input={"model": model["id"], "alias": "champion"},
    )
    gone = await model_query(api, 'alias(name: "champion") { version { number } }')
    assert gone["alias"] is None
    own = await api(
        "query($id: ID!) { node(id: $id) { ... on ModelVersion { aliasHistory { edges { node {"
        " alias version { number } previousVersion { number } } } } } } }",
        id=v2["id"],
    )
    assert [e["node"] for e in own["node"]["aliasHistory"]["edges"]] == [
        {"alias": "champion", "version": None, "previousVersion": {"number": 2}},
        {"alias": "champion", "version": {"number": 2}, "previousVersion": {"number": 1}},
    ]
