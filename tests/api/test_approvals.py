"""Stage transition requests and approvals, quality gates and project settings."""

import asyncio
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from strawberry import relay

from mlcatalog.api.ids import row_id
from mlcatalog.auth.access import Policy, access_of
from mlcatalog.auth.principal import Method, Principal, TokenGrant
from mlcatalog.catalog import lineage
from mlcatalog.store.database import Origin
from mlcatalog.store.journal import Action, EdgeKind, EntityType
from mlcatalog.store.rows import JournalRow
from tests import factories
from tests.conftest import Api
from tests.policies import policy_in

REQUEST = """
mutation($version: ID!, $stage: Stage!, $comment: String) {
  requestStageTransition(input: {version: $version, stage: $stage, comment: $comment}) {
    request { id fromStage toStage status comment requestedBy version { stage } }
  }
}
"""
APPROVE = """
mutation($request: ID!) {
  approveStageTransition(input: {request: $request, comment: "ship it"}) {
    request { status decidedBy decisionComment }
    modelVersion { id stage }
  }
}
"""
REJECT = """
mutation($request: ID!) {
  rejectStageTransition(input: {request: $request, comment: "not yet"}) {
    request { status decidedBy }
  }
}
"""
CANCEL = """
mutation($request: ID!) {
  cancelStageTransition(input: {request: $request}) { request { status decidedBy } }
}
"""
SETTINGS = """
mutation($project: String!, $stages: [Stage!], $fourEyes: Boolean) {
  updateProjectSettings(
    input: {project: $project, requireApproval: $stages, fourEyes: $fourEyes}
  ) { project { settings { requireApproval fourEyes } } }
}
"""
ADD_GATE = """
mutation($stage: Stage!, $kind: QualityGateKind!, $parameters: JSON!) {
  addQualityGate(
    input: {project: "fraud", stage: $stage, kind: $kind, parameters: $parameters}
  ) { qualityGate { id stage kind parameters rule } }
}
"""
SET_STAGE = """
mutation($id: ID!, $stage: Stage!) {
  setModelVersionStage(input: {id: $id, stage: $stage}) { modelVersion { stage } }
}
"""
PENDING = """
query {
  transitionRequests(status: PENDING) {
    totalCount edges { node { toStage requestedBy model { name } } }
  }
  model(project: "fraud", name: "fraud-detector") {
    transitionRequests(status: PENDING) { edges { node { id toStage } } }
    all: transitionRequests { totalCount }
  }
}
"""
AUC_GATE = {"metric": "auc", "dataset": "holdout", "operator": ">=", "value": 0.9}


async def catalog(api: Api, stage: str = "STAGING") -> dict[str, Any]:
    """factories.catalog with its version created in ``stage`` (STAGING: one step from
    PRODUCTION), so that the journal holds no stage move yet."""
    await factories.project(api)
    model = await factories.model(api)
    return {"model": model, "version": await factories.version(api, model["id"], stage=stage)}


def as_actor(api: Api, actor: str) -> Api:
    return Api(api.database, actor=actor)


async def request(api: Api, version_id: str, stage: str = "PRODUCTION") -> dict[str, Any]:
    data = await api(REQUEST, version=version_id, stage=stage, comment="holdout auc is 0.95")
    return dict(data["requestStageTransition"]["request"])


async def entries(api: Api, action: Action) -> list[JournalRow]:
    async with api.database.read() as session:
        stmt = select(JournalRow).where(JournalRow.action == action).order_by(JournalRow.seq)
        return list(await session.scalars(stmt))


async def test_an_approved_request_moves_the_version_and_the_move_names_the_approval(
    api: Api,
) -> None:
    made = await catalog(api)
    asked = await request(api, made["version"]["id"])
    assert asked["fromStage"] == "STAGING" and asked["toStage"] == "PRODUCTION"
    assert asked["status"] == "PENDING" and asked["requestedBy"] == "tester"
    assert asked["version"]["stage"] == "STAGING"  # nothing moved yet

    data = await as_actor(api, "reviewer")(APPROVE, request=asked["id"])
    approved = data["approveStageTransition"]
    assert approved["request"] == {
        "status": "APPROVED",
        "decidedBy": "reviewer",
        "decisionComment": "ship it",
    }
    assert approved["modelVersion"]["stage"] == "PRODUCTION"
    (moved,) = await entries(api, Action.MODEL_VERSION_STAGE_CHANGED)
    (decision,) = await entries(api, Action.STAGE_TRANSITION_APPROVED)
    assert moved.actor == decision.actor == "reviewer"
    assert moved.changes["after"]["approval_id"] == decision.entity_id
    assert decision.changes["after"] == {"status": "APPROVED", "comment": "ship it"}


async def test_pending_requests_are_listed_per_model_and_for_approvers(api: Api) -> None:
    made = await catalog(api)
    other = await factories.version(api, made["model"]["id"], stage="DEVELOPMENT")
    first = await request(api, made["version"]["id"])
    await request(api, other["id"], "STAGING")
    await api(REJECT, request=first["id"])
    data = await api(PENDING)
    assert data["transitionRequests"]["totalCount"] == 1
    (pending,) = data["transitionRequests"]["edges"]
    assert pending["node"] == {
        "toStage": "STAGING",
        "requestedBy": "tester",
        "model": {"name": "fraud-detector"},
    }
    model = data["model"]
    assert [e["node"]["toStage"] for e in model["transitionRequests"]["edges"]] == ["STAGING"]
    assert model["all"]["totalCount"] == 2


async def test_a_second_pending_request_for_a_version_is_refused(api: Api) -> None:
    made = await catalog(api)
    await request(api, made["version"]["id"])
    # An allowed move (back to DEVELOPMENT), refused only because a request is pending.
    code, message = await api.error(REQUEST, version=made["version"]["id"], stage="DEVELOPMENT")
    assert code == "ALREADY_EXISTS"
    assert "already has a pending stage transition request" in message


async def test_a_request_for_the_stage_the_version_is_in_is_refused(api: Api) -> None:
    made = await catalog(api)
    code, message = await api.error(REQUEST, version=made["version"]["id"], stage="STAGING")
    assert (code, message) == ("FAILED_PRECONDITION", "version 1 is already in STAGING")


async def test_a_request_for_a_move_the_lifecycle_does_not_allow_is_refused(api: Api) -> None:
    made = await catalog(api, "DEVELOPMENT")
    code, message = await api.error(REQUEST, version=made["version"]["id"], stage="PRODUCTION")
    assert code == "FAILED_PRECONDITION"
    assert message == (
        "version 1 is in DEVELOPMENT: it may move to STAGING or ARCHIVED, not PRODUCTION"
    )
    assert not await entries(api, Action.STAGE_TRANSITION_REQUESTED)


async def test_four_eyes_keeps_the_requester_from_approving(api: Api) -> None:
    made = await catalog(api)
    await api(SETTINGS, project="fraud", fourEyes=True)
    asked = await request(api, made["version"]["id"])
    code, message = await api.error(APPROVE, request=asked["id"])
    assert code == "FORBIDDEN"
    assert "four eyes" in message
    assert not await entries(api, Action.MODEL_VERSION_STAGE_CHANGED)
    data = await as_actor(api, "reviewer")(APPROVE, request=asked["id"])
    assert data["approveStageTransition"]["modelVersion"]["stage"] == "PRODUCTION"


async def test_under_four_eyes_an_api_token_neither_approves_nor_rejects(api: Api) -> None:
    # Its subject differs from its owner's login, so it could approve its owner's own request.
    made = await catalog(api)
    await api(SETTINGS, project="fraud", fourEyes=True)
    asked = await request(api, made["version"]["id"])
    grant = TokenGrant(name="ci", project="fraud", role="maintainer")
    token = Principal(subject="token:ci#0123456789abcdef", method=Method.API_TOKEN, token=grant)
    pipeline = Api(api.database, actor=token.subject, principal=token)
    for decide in (APPROVE, REJECT):
        code, message = await pipeline.error(decide, request=asked["id"])
        assert code == "FORBIDDEN"
        assert "a person must" in message
    assert not await entries(api, Action.MODEL_VERSION_STAGE_CHANGED)
    data = await as_actor(api, "reviewer")(APPROVE, request=asked["id"])
    assert data["approveStageTransition"]["modelVersion"]["stage"] == "PRODUCTION"


async def test_without_four_eyes_the_requester_may_approve(api: Api) -> None:
    made = await catalog(api)
    asked = await request(api, made["version"]["id"])
    data = await api(APPROVE, request=asked["id"])
    assert data["approveStageTransition"]["request"]["status"] == "APPROVED"


async def test_a_decided_request_cannot_be_decided_again(api: Api) -> None:
    made = await catalog(api)
    asked = await request(api, made["version"]["id"])
    data = await api(REJECT, request=asked["id"])
    assert data["rejectStageTransition"]["request"] == {"status": "REJECTED", "decidedBy": "tester"}
    for mutation in (APPROVE, REJECT, CANCEL):
        code, message = await api.error(mutation, request=asked["id"])
        assert code == "FAILED_PRECONDITION"
        assert "is REJECTED, no longer pending" in message


async def test_only_the_requester_cancels(api: Api) -> None:
    made = await catalog(api)
    asked = await request(api, made["version"]["id"])
    code, message = await as_actor(api, "someone").error(CANCEL, request=asked["id"])
    assert code == "FORBIDDEN"
    assert "only the requester (tester) may cancel" in message
    data = await api(CANCEL, request=asked["id"])
    assert data["cancelStageTransition"]["request"] == {
        "status": "CANCELLED",
        "decidedBy": "tester",
    }
    (cancelled,) = await entries(api, Action.STAGE_TRANSITION_CANCELLED)
    assert cancelled.changes == {
        "before": {"status": "PENDING"},
        "after": {"status": "CANCELLED", "comment": None},
    }


async def test_an_approval_after_the_version_moved_is_refused(api: Api) -> None:
    made = await catalog(api)
    asked = await request(api, made["version"]["id"])
    await api(SET_STAGE, id=made["version"]["id"], stage="DEVELOPMENT")
    code, message = await api.error(APPROVE, request=asked["id"])
    assert code == "FAILED_PRECONDITION"
    assert "moved from STAGING to DEVELOPMENT since the request" in message


async def test_a_direct_move_into_a_stage_that_requires_approval_is_refused(api: Api) -> None:
    made = await catalog(api)
    data = await api(SETTINGS, project="fraud", stages=["PRODUCTION", "STAGING", "PRODUCTION"])
    assert data["updateProjectSettings"]["project"]["settings"] == {
        "requireApproval": ["STAGING", "PRODUCTION"],
        "fourEyes": False,
    }
    code, message = await api.error(SET_STAGE, id=made["version"]["id"], stage="PRODUCTION")
    assert code == "FAILED_PRECONDITION"
    assert "requires approval to move a version into PRODUCTION" in message
    assert "requestStageTransition" in message
    # Other stages move directly.
    data = await api(SET_STAGE, id=made["version"]["id"], stage="DEVELOPMENT")
    assert data["setModelVersionStage"]["modelVersion"]["stage"] == "DEVELOPMENT"


async def test_settings_changes_are_journaled_once_and_only_when_they_change(api: Api) -> None:
    await factories.project(api)
    await api(SETTINGS, project="fraud", stages=["PRODUCTION"], fourEyes=True)
    await api(SETTINGS, project="fraud", stages=["PRODUCTION"])  # no change
    await api(SETTINGS, project="fraud", fourEyes=False)
    changes = [e.changes for e in await entries(api, Action.PROJECT_SETTINGS_CHANGED)]
    assert changes == [
        {
            "before": {"require_approval": [], "four_eyes": False},
            "after": {"require_approval": ["PRODUCTION"], "four_eyes": True},
        },
        {"before": {"four_eyes": True}, "after": {"four_eyes": False}},
    ]


async def test_a_project_without_settings_requires_nothing(api: Api) -> None:
    await factories.project(api)
    data = await api("{ projects { edges { node { settings { requireApproval fourEyes } } } } }")
    (edge,) = data["projects"]["edges"]
    assert edge["node"]["settings"] == {"requireApproval": [], "fourEyes": False}


async def test_a_metric_gate_names_the_rule_and_the_value_found(api: Api) -> None:
    await factories.project(api)
    model = await factories.model(api)
    low = await factories.version(
        api,
        model["id"],
        stage="DEVELOPMENT",
        metrics=[{"name": "auc", "value": 0.85, "dataset": "holdout"}],
    )
    missing = await factories.version(api, model["id"], stage="STAGING")
    data = await api(ADD_GATE, stage="PRODUCTION", kind="METRIC_THRESHOLD", parameters=AUC_GATE)
    gate = data["addQualityGate"]["qualityGate"]
    assert gate["rule"] == "auc on holdout >= 0.9" and gate["parameters"] == AUC_GATE
    # Gates hold only for their stage.
    data = await api(SET_STAGE, id=low["id"], stage="STAGING")
    assert data["setModelVersionStage"]["modelVersion"]["stage"] == "STAGING"

    code, message = await api.error(SET_STAGE, id=low["id"], stage="PRODUCTION")
    assert code == "FAILED_PRECONDITION"
    assert message == (
        "version 1 fails the quality gates of PRODUCTION: auc on holdout >= 0.9 (found 0.85)"
    )
    code, message = await api.error(SET_STAGE, id=missing["id"], stage="PRODUCTION")
    assert code == "FAILED_PRECONDITION"
    assert message.endswith("auc on holdout >= 0.9 (no such metric)")


async def test_gates_hold_for_approved_moves_and_leave_the_request_pending(api: Api) -> None:
    await factories.project(api)
    model = await factories.model(api)
    low = await factories.version(
        api,
        model["id"],
        stage="STAGING",
        metrics=[{"name": "auc", "value": 0.85, "dataset": "holdout"}],
    )
    await api(ADD_GATE, stage="PRODUCTION", kind="METRIC_THRESHOLD", parameters=AUC_GATE)
    asked = await request(api, low["id"])
    code, message = await api.error(APPROVE, request=asked["id"])
    assert code == "FAILED_PRECONDITION"
    assert "auc on holdout >= 0.9 (found 0.85)" in message
    data = await api(PENDING)
    assert data["transitionRequests"]["totalCount"] == 1
    assert not await entries(api, Action.STAGE_TRANSITION_APPROVED)


async def test_a_card_gate_needs_the_section_filled_in(api: Api) -> None:
    made = await catalog(api, "DEVELOPMENT")
    version_id = made["version"]["id"]
    await api(
        ADD_GATE, stage="STAGING", kind="CARD_SECTION", parameters={"section": "intended_use"}
    )
    _, message = await api.error(SET_STAGE, id=version_id, stage="STAGING")
    assert message.endswith("a model card with intended_use (no model card)")
    upsert = """
    mutation($subject: ID!, $use: String) {
      upsertDocument(input: {subject: $subject, intendedUse: $use, markdown: "# card"}) {
        document { revision }
      }
    }
    """
    await api(upsert, subject=made["model"]["id"], use="   ")
    _, message = await api.error(SET_STAGE, id=version_id, stage="STAGING")
    assert message.endswith("a model card with intended_use (the section is empty)")
    await api(upsert, subject=made["model"]["id"], use="Scoring card transactions")
    data = await api(SET_STAGE, id=version_id, stage="STAGING")
    assert data["setModelVersionStage"]["modelVersion"]["stage"] == "STAGING"


async def test_a_pii_gate_names_the_tagged_training_data(api: Api) -> None:
    await factories.project(api)
    model = await factories.model(api)
    pii = await factories.dataset(api, "customers", tags=[{"key": "pii", "value": "true"}])
    clean = await factories.dataset(api, "transactions", tags=[{"key": "pii", "value": "false"}])
    pii_v1 = await factories.dataset_version(api, pii["id"])
    clean_v1 = await factories.dataset_version(api, clean["id"])
    tainted = await factories.version(
        api, model["id"], stage="STAGING", trainingDatasets=[pii_v1["id"], clean_v1["id"]]
    )
    fine = await factories.version(
        api, model["id"], stage="STAGING", trainingDatasets=[clean_v1["id"]]
    )
    await api(
        ADD_GATE,
        stage="PRODUCTION",
        kind="NO_TAGGED_TRAINING_DATA",
        parameters={"key": "pii", "value": "true"},
    )
    code, message = await api.error(SET_STAGE, id=tainted["id"], stage="PRODUCTION")
    assert code == "FAILED_PRECONDITION"
    assert message.endswith("trained on no dataset tagged pii=true (trained on customers)")
    data = await api(SET_STAGE, id=fine["id"], stage="PRODUCTION")
    assert data["setModelVersionStage"]["modelVersion"]["stage"] == "PRODUCTION"


def number(global_id: str) -> int:
    return row_id(relay.GlobalID.from_id(global_id).node_id)


@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)
async def test_a_promotion_waits_for_a_change_in_flight_and_its_gates_see_it(api: Api) -> None:
    # Gates run under the model's lock, which lineage, metrics and definition changes take too:
    # a link to tagged data committed while the promotion waits is what its gates judge.
    await factories.project(api)
    model = await factories.model(api)
    pii = await factories.dataset(api, "customers", tags=[{"key": "pii", "value": "true"}])
    pii_v1 = await factories.dataset_version(api, pii["id"])
    version = await factories.version(api, model["id"], stage="STAGING")
    await api(
        ADD_GATE,
        stage="PRODUCTION",
        kind="NO_TAGGED_TRAINING_DATA",
        parameters={"key": "pii", "value": "true"},
    )
    async with api.database.unit_of_work(Origin(actor="trainer")) as uow:
        await lineage.link_lineage(
            uow,
            kind=EdgeKind.TRAINED_ON,
            upstream=(EntityType.DATASET_VERSION, number(pii_v1["id"])),
            downstream=(EntityType.MODEL_VERSION, number(version["id"])),
        )
        promoting = asyncio.create_task(api.error(SET_STAGE, id=version["id"], stage="PRODUCTION"))
        await asyncio.sleep(0.5)
        assert not promoting.done()  # waiting for the model's lock
    code, message = await promoting
    assert code == "FAILED_PRECONDITION"
    assert message.endswith("trained on no dataset tagged pii=true (trained on customers)")


async def test_every_failing_gate_is_named_in_a_bounded_number_of_statements(api: Api) -> None:
    await factories.project(api)
    model = await factories.model(api)
    tags = [{"key": "pii", "value": "true"}, {"key": "licence", "value": "research-only"}]
    data = await factories.dataset_version(api, (await factories.dataset(api, tags=tags))["id"])
    version = await factories.version(
        api, model["id"], stage="STAGING", trainingDatasets=[data["id"]]
    )
    gates = [
        ("METRIC_THRESHOLD", AUC_GATE),
        ("METRIC_THRESHOLD", {"metric": "latency_ms", "operator": "<", "value": 50}),
        ("CARD_SECTION", {"section": "intended_use"}),
        ("CARD_SECTION", {"section": "ethical_considerations"}),
        ("NO_TAGGED_TRAINING_DATA", {"key": "pii", "value": "true"}),
        ("NO_TAGGED_TRAINING_DATA", {"key": "licence", "value": "research-only"}),
    ]
    counted: list[int] = []
    for kind, parameters in gates:
        await api(ADD_GATE, stage="PRODUCTION", kind=kind, parameters=parameters)
        if kind == "NO_TAGGED_TRAINING_DATA":
            counter = api.count_statements()
            await api.error(SET_STAGE, id=version["id"], stage="PRODUCTION")
            counted.append(len(counter))
    _, message = await api.error(SET_STAGE, id=version["id"], stage="PRODUCTION")
    assert message.count("(") == 6  # six rules, each with what was found
    assert counted[0] == counted[1]  # a second gate of each kind costs no statement


async def test_gate_parameters_are_checked_per_kind(api: Api) -> None:
    await factories.project(api)
    cases = [
        ("METRIC_THRESHOLD", {"metric": "auc", "operator": "=>", "value": 1}, "operator"),
        ("METRIC_THRESHOLD", {"metric": "auc", "operator": ">="}, "needs value"),
        ("METRIC_THRESHOLD", {**AUC_GATE, "value": "high"}, "finite number"),
        ("CARD_SECTION", {"section": "vibes"}, "section must be one of"),
        ("NO_TAGGED_TRAINING_DATA", {"key": "pii", "value": "true", "x": 1}, "takes no x"),
        ("CARD_SECTION", ["intended_use"], "JSON object"),
    ]
    for kind, parameters, expected in cases:
        code, message = await api.error(
            ADD_GATE, stage="PRODUCTION", kind=kind, parameters=parameters
        )
        assert code == "INVALID_ARGUMENT", message
        assert expected in message
    await api(ADD_GATE, stage="PRODUCTION", kind="METRIC_THRESHOLD", parameters=AUC_GATE)
    code, _ = await api.error(
        ADD_GATE, stage="PRODUCTION", kind="METRIC_THRESHOLD", parameters=AUC_GATE
    )
    assert code == "ALREADY_EXISTS"


async def test_gates_are_listed_on_the_project_and_removed(api: Api) -> None:
    made = await catalog(api)
    data = await api(ADD_GATE, stage="PRODUCTION", kind="METRIC_THRESHOLD", parameters=AUC_GATE)
    gate_id = data["addQualityGate"]["qualityGate"]["id"]
    listed = "{ projects { edges { node { qualityGates { edges { node { id rule stage } } } } } } }"
    data = await api(listed)
    (project,) = data["projects"]["edges"]
    assert project["node"]["qualityGates"]["edges"] == [
        {"node": {"id": gate_id, "rule": "auc on holdout >= 0.9", "stage": "PRODUCTION"}}
    ]
    remove = "mutation($id: ID!) { removeQualityGate(input: {id: $id}) { removedId } }"
    assert (await api(remove, id=gate_id))["removeQualityGate"]["removedId"] == gate_id
    data = await api(SET_STAGE, id=made["version"]["id"], stage="PRODUCTION")
    assert data["setModelVersionStage"]["modelVersion"]["stage"] == "PRODUCTION"
    added, removed = (
        await entries(api, Action.QUALITY_GATE_ADDED),
        await entries(api, Action.QUALITY_GATE_REMOVED),
    )
    assert added[0].entity_id == removed[0].entity_id
    assert removed[0].changes["before"]["parameters"] == AUC_GATE
    code, _ = await api.error(remove, id=gate_id)
    assert code == "NOT_FOUND"


# --- roles and visibility -----------------------------------------------------------------

PEOPLE = """
g, user:carol, contributor, fraud
g, user:mia, maintainer, fraud
g, user:erin, viewer, fraud
g, user:erin, viewer, other
g, user:otto, maintainer, other
g, user:ada, admin, *
"""


@pytest.fixture
def policy(tmp_path: Path) -> Policy:
    return Policy(policy_in(tmp_path / "policies", PEOPLE))


def person(api: Api, policy: Policy, subject: str) -> Api:
    principal = Principal(subject=subject, method=Method.BEARER)
    return Api(api.database, actor=subject, access=access_of(policy, principal))


async def test_contributors_request_and_maintainers_decide(api: Api, policy: Policy) -> None:
    made = await catalog(api)
    carol, mia = person(api, policy, "carol"), person(api, policy, "mia")
    asked = await request(carol, made["version"]["id"])
    code, _ = await carol.error(APPROVE, request=asked["id"])
    assert code == "FORBIDDEN"
    for denied in (
        carol.error(SETTINGS, project="fraud", fourEyes=False),
        carol.error(
            ADD_GATE, stage="PRODUCTION", kind="CARD_SECTION", parameters={"section": "factors"}
        ),
    ):
        assert (await denied)[0] == "FORBIDDEN"
    data = await mia(APPROVE, request=asked["id"])
    assert data["approveStageTransition"]["request"]["decidedBy"] == "mia"


async def test_only_admins_change_four_eyes_and_gates(api: Api, policy: Policy) -> None:
    # A maintainer who could switch four eyes or a gate off could approve its own request.
    await catalog(api)
    await api(SETTINGS, project="fraud", stages=["PRODUCTION"], fourEyes=True)
    added = await api(ADD_GATE, stage="PRODUCTION", kind="METRIC_THRESHOLD", parameters=AUC_GATE)
    remove = "mutation($id: ID!) { removeQualityGate(input: {id: $id}) { removedId } }"
    mia = person(api, policy, "mia")
    for denied in (
        mia.error(SETTINGS, project="fraud", fourEyes=False),
        mia.error(SETTINGS, project="fraud", stages=[]),
        mia.error(remove, id=added["addQualityGate"]["qualityGate"]["id"]),
        mia.error(
            ADD_GATE, stage="PRODUCTION", kind="CARD_SECTION", parameters={"section": "factors"}
        ),
    ):
        assert (await denied)[0] == "FORBIDDEN"
    listed = "{ projects { edges { node {"
    listed += " settings { requireApproval fourEyes } qualityGates { totalCount } } } } }"
    (project,) = (await api(listed))["projects"]["edges"]
    assert project["node"]["settings"] == {"requireApproval": ["PRODUCTION"], "fourEyes": True}
    assert project["node"]["qualityGates"]["totalCount"] == 1
    ada = person(api, policy, "ada")
    await ada(SETTINGS, project="fraud", fourEyes=False)


async def test_a_contributor_cancels_their_own_request(api: Api, policy: Policy) -> None:
    made = await catalog(api)
    carol = person(api, policy, "carol")
    asked = await request(carol, made["version"]["id"])
    data = await carol(CANCEL, request=asked["id"])
    assert data["cancelStageTransition"]["request"]["status"] == "CANCELLED"


async def test_requests_of_hidden_projects_are_not_listed_or_decided(
    api: Api, policy: Policy
) -> None:
    made = await catalog(api)
    await factories.project(api, "secret")
    hidden_model = await factories.model(api, project="secret")
    hidden = await factories.version(api, hidden_model["id"], stage="STAGING")
    await request(api, made["version"]["id"])
    secret = await request(api, hidden["id"])
    erin = person(api, policy, "erin")  # sees fraud and other, not secret
    data = await erin("{ transitionRequests { totalCount edges { node { model { name } } } } }")
    assert data["transitionRequests"]["totalCount"] == 1
    otto = person(api, policy, "otto")  # a maintainer, of another project
    code, _ = await otto.error(APPROVE, request=secret["id"])
    assert code == "NOT_FOUND"
    node = "query($id: ID!) { node(id: $id) { id } }"
    assert (await erin(node, id=secret["id"]))["node"] is None


async def test_concurrent_approvals_of_one_request_move_the_version_once(api: Api) -> None:
    made = await catalog(api)
    asked = await request(api, made["version"]["id"])
    # Each call opens its own transaction on its own connection, as concurrent requests do.
    results = await asyncio.gather(*(api.run(APPROVE, request=asked["id"]) for _ in range(5)))
    refused = [r.errors[0].extensions["code"] for r in results if r.errors]
    assert len(refused) == 4 and set(refused) == {"FAILED_PRECONDITION"}
    assert len(await entries(api, Action.STAGE_TRANSITION_APPROVED)) == 1
    assert len(await entries(api, Action.MODEL_VERSION_STAGE_CHANGED)) == 1


async def test_concurrent_requests_for_one_version_let_one_through(api: Api) -> None:
    made = await catalog(api)
    results = await asyncio.gather(
        *(
            api.run(REQUEST, version=made["version"]["id"], stage="PRODUCTION", comment=None)
            for _ in range(5)
        )
    )
    refused = [r.errors[0].extensions["code"] for r in results if r.errors]
    assert refused == ["ALREADY_EXISTS"] * 4


async def test_a_requests_history_says_who_asked_and_who_approved(api: Api) -> None:
    made = await catalog(api)
    asked = await request(api, made["version"]["id"])
    await as_actor(api, "reviewer")(APPROVE, request=asked["id"])
    history = "query($id: ID!) { history(id: $id) { edges { node { action actor after } } } }"
    data = await api(history, id=asked["id"])
    assert [(e["node"]["action"], e["node"]["actor"]) for e in data["history"]["edges"]] == [
        ("stage_transition.approved", "reviewer"),
        ("stage_transition.requested", "tester"),
    ]
    data = await api(history, id=made["version"]["id"])
    moved = data["history"]["edges"][0]["node"]
    assert moved["action"] == "model_version.stage_changed"
    (decision,) = await entries(api, Action.STAGE_TRANSITION_APPROVED)
    assert moved["after"]["stage"] == "PRODUCTION"
    assert moved["after"]["approval_id"] == decision.entity_id


async def test_a_version_with_a_pending_request_can_be_deleted(api: Api) -> None:
    made = await catalog(api)
    await request(api, made["version"]["id"])
    delete = "mutation($id: ID!) { deleteModelVersion(input: {id: $id}) { deletedId } }"
    await api(delete, id=made["version"]["id"])
    data = await api(PENDING)
    assert data["transitionRequests"]["totalCount"] == 0


# --- creating in a stage and rolling back ---------------------------------------------------

ROLLBACK = """
mutation($model: ID!) {
  rollbackProduction(input: {model: $model}) { modelVersion { number stage } }
}
"""


async def test_creating_in_a_stage_that_requires_approval_is_refused(api: Api) -> None:
    await factories.project(api)
    model = await factories.model(api)
    await api(SETTINGS, project="fraud", stages=["STAGING"])
    code, message = await api.error(
        factories.CREATE_VERSION, input={"model": model["id"], "stage": "STAGING"}
    )
    assert code == "FAILED_PRECONDITION"
    assert message == (
        "project 'fraud' requires approval to create a version in STAGING: create it in an"
        " earlier stage, then request the move with requestStageTransition"
    )
    assert not await entries(api, Action.MODEL_VERSION_CREATED)
    # Other stages take new versions, and the way into STAGING is a request.
    version = await factories.version(api, model["id"], stage="DEVELOPMENT")
    asked = await request(api, version["id"], "STAGING")
    data = await api(APPROVE, request=asked["id"])
    assert data["approveStageTransition"]["modelVersion"]["stage"] == "STAGING"


async def test_creating_in_a_gated_stage_runs_its_gates_on_the_version_as_created(
    api: Api,
) -> None:
    await factories.project(api)
    model = await factories.model(api)
    pii = await factories.dataset(api, "customers", tags=[{"key": "pii", "value": "true"}])
    pii_v1 = await factories.dataset_version(api, pii["id"])
    await api(ADD_GATE, stage="STAGING", kind="METRIC_THRESHOLD", parameters=AUC_GATE)
    await api(
        ADD_GATE,
        stage="STAGING",
        kind="NO_TAGGED_TRAINING_DATA",
        parameters={"key": "pii", "value": "true"},
    )
    low = [{"name": "auc", "value": 0.85, "dataset": "holdout"}]
    high = [{"name": "auc", "value": 0.95, "dataset": "holdout"}]
    code, message = await api.error(
        factories.CREATE_VERSION,
        input={
            "model": model["id"],
            "stage": "STAGING",
            "metrics": low,
            "trainingDatasets": [pii_v1["id"]],
        },
    )
    assert code == "FAILED_PRECONDITION"
    assert message == (
        "version 1 fails the quality gates of STAGING: auc on holdout >= 0.9 (found 0.85);"
        " trained on no dataset tagged pii=true (trained on customers)"
    )
    assert not await entries(api, Action.MODEL_VERSION_CREATED)  # rolled back whole
    passing = await factories.version(api, model["id"], stage="STAGING", metrics=high)
    assert passing["stage"] == "STAGING"
    # Gates hold only for their stage.
    below = await factories.version(api, model["id"], stage="DEVELOPMENT", metrics=low)
    assert below["stage"] == "DEVELOPMENT"


async def test_rollback_needs_no_approval_and_passes_no_gate_but_is_journaled(
    api: Api, policy: Policy
) -> None:
    made = await catalog(api)
    v1 = made["version"]  # v2's promotion archives it, and the rollback puts it back
    v2 = await factories.version(api, made["model"]["id"], stage="STAGING")
    for version in (v1, v2):
        await api(SET_STAGE, id=version["id"], stage="PRODUCTION")
    await api(SETTINGS, project="fraud", stages=["PRODUCTION"])
    await api(ADD_GATE, stage="PRODUCTION", kind="METRIC_THRESHOLD", parameters=AUC_GATE)
    # An emergency action for maintainers (who hold Stage.PRODUCTION), not contributors.
    code, _ = await person(api, policy, "carol").error(ROLLBACK, model=made["model"]["id"])
    assert code == "FORBIDDEN"
    data = await person(api, policy, "mia")(ROLLBACK, model=made["model"]["id"])
    assert data["rollbackProduction"]["modelVersion"] == {"number": 1, "stage": "PRODUCTION"}
    *_, back, archived = await entries(api, Action.MODEL_VERSION_STAGE_CHANGED)
    assert back.actor == archived.actor == "mia"
    assert back.changes["before"] == {"stage": "ARCHIVED"}
    after = back.changes["after"]
    assert (after["stage"], after["rollback"], after["archived"]) == (
        "PRODUCTION",
        True,
        [archived.entity_id],
    )
    assert "approval_id" not in after
    assert archived.changes["before"] == {"stage": "PRODUCTION"}
