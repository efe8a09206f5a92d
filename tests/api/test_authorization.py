"""Casbin authorization on every field, in every list and on every write (api/authorize.py)."""

from pathlib import Path
from typing import Any

import pytest
from graphql import GraphQLObjectType, GraphQLScalarType, get_named_type
from sqlalchemy import select

from mlcatalog.api.authorize import unwrap_fields
from mlcatalog.api.schema import schema
from mlcatalog.auth.access import (
    READ,
    Grant,
    Policies,
    Policy,
    Verdict,
    access_of,
)
from mlcatalog.auth.principal import Method, Principal
from mlcatalog.store.database import Database
from mlcatalog.store.rows import JournalRow
from tests import factories
from tests.conftest import Api
from tests.policies import policy_in

PEOPLE = """
g, user:alice, maintainer, fraud
g, user:alice, viewer, *
g, group:readers, viewer, *
g, user:carol, contributor, fraud
g, user:carol, viewer, *
g, user:dave, auditor, *
g, user:erin, viewer, fraud
g, user:frank, contributor, fraud
g, user:grace, maintainer, fraud
"""
ROLES = ("admin", "maintainer", "contributor", "viewer", "auditor")


@pytest.fixture
def policy(tmp_path: Path) -> Policy:
    return Policy(policy_in(tmp_path / "policies", PEOPLE))


def user(subject: str, *groups: str) -> Principal:
    return Principal(subject=subject, method=Method.BEARER, groups=groups)


def as_user(api: Api, policy: Policy, principal: Principal) -> Api:
    return Api(api.database, actor=principal.subject, access=access_of(policy, principal))


def codes(result: Any) -> list[tuple[str, list[Any]]]:
    return [(e.extensions["code"], e.path) for e in result.errors or ()]


def test_every_field_and_mutation_has_a_policy_line(policy: Policy) -> None:
    # The admin's `*` covers everything; deny by default means each field is named for the
    # roles below admin, so a new field stays hidden until someone decides who reads it.
    missing = [
        coordinate
        for coordinate, _ in unwrap_fields(schema._schema)
        if not policy.granted(coordinate)
    ]
    lines = [
        f"p, maintainer, *, {c}, write" if c.startswith("Mutation.") else f"p, viewer, *, {c}, read"
        for c in missing
    ]
    assert not missing, "no policy line covers these; add to policies/policy.csv e.g.:\n" + (
        "\n".join(lines)
    )


def test_a_new_type_without_a_line_is_found(tmp_path: Path) -> None:
    files = policy_in(tmp_path / "p", extra="")
    text = files.policy.read_text().replace("p, viewer, *, Model.*, read\n", "")
    files.policy.write_text(text)
    assert not Policy(files).granted("Model.name")


# --- the role by field matrix -----------------------------------------------------------------

VERSIONS = (
    '{ model(project: "fraud", name: "detector") { versions(first: 1) { edges { node { %s } } } } }'
)
HOOKS = "{ projects(first: 1) { edges { node { webhooks(first: 1) { edges { node { %s } } } } } } }"
# Each type, a query reaching one of its objects in project fraud, and the fields on the way.
ROUTES: dict[str, tuple[str, tuple[str, ...]]] = {
    "Project": ("{ projects(first: 5) { edges { node { %s } } } }", ("Query.projects",)),
    "Model": ('{ model(project: "fraud", name: "detector") { %s } }', ("Query.model",)),
    "ModelVersion": (VERSIONS, ("Query.model", "Model.versions")),
    "Artifact": (
        VERSIONS % "artifact { %s }",
        ("Query.model", "Model.versions", "ModelVersion.artifact"),
    ),
    "Comment": (
        VERSIONS % "comments(first: 1) { edges { node { %s } } }",
        ("Query.model", "Model.versions", "ModelVersion.comments"),
    ),
    "Dataset": ('{ dataset(project: "fraud", name: "transactions") { %s } }', ("Query.dataset",)),
    "DatasetVersion": (
        '{ dataset(project: "fraud", name: "transactions") { versions(first: 1) { edges { node { %s } } } } }',
        ("Query.dataset", "Dataset.versions"),
    ),
    "Experiment": (
        '{ experiment(project: "fraud", name: "baseline") { %s } }',
        ("Query.experiment",),
    ),
    "Run": (
        '{ experiment(project: "fraud", name: "baseline") { runs(first: 1) { edges { node { %s } } } } }',
        ("Query.experiment", "Experiment.runs"),
    ),
    "Webhook": (HOOKS, ("Query.projects", "Project.webhooks")),
    "WebhookDelivery": (
        HOOKS % "deliveries(first: 1) { edges { node { %s } } }",
        ("Query.projects", "Project.webhooks", "Webhook.deliveries"),
    ),
    "JournalEntry": (
        '{ auditLog(first: 1, filter: {project: "fraud"}) { edges { node { %s } } } }',
        ("Query.auditLog",),
    ),
}


async def seed_fraud(api: Api) -> None:
    await factories.project(api, "fraud")
    model = await factories.model(api, "detector")
    version = await factories.version(
        api,
        model["id"],
        artifact={"uri": "s3://models/detector/1", "format": "onnx"},
        hyperparameters={"depth": 6},
    )
    await api(
        'mutation($v: ID!) { addComment(input: {id: $v, body: "ok"}) { comment { id } } }',
        v=version["id"],
    )
    dataset = await factories.dataset(api, "transactions")
    await factories.dataset_version(api, dataset["id"])
    await factories.run(api, params=[{"name": "lr", "value": "0.1"}])
    # A hook with one attempt: a ping to a private address, refused without leaving the host.
    hook = await api(
        'mutation { createWebhook(input: {project: "fraud", url: "http://10.0.0.1/",'
        ' actions: ["model.registered"]}) { webhook { id } } }'
    )
    await api(
        "mutation($id: ID!) { testWebhook(input: {id: $id}) { delivery { error } } }",
        id=hook["createWebhook"]["webhook"]["id"],
    )


def selection(type_name: str, field_name: str) -> str:
    field = schema._schema.type_map[type_name].fields[field_name]  # type: ignore[union-attr]
    named = get_named_type(field.type)
    return (
        field_name
        if isinstance(named, GraphQLScalarType)
        or (not isinstance(named, GraphQLObjectType) and not hasattr(named, "fields"))
        else f"{field_name} {{ __typename }}"
    )


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
@pytest.mark.parametrize("role", ROLES)
async def test_each_role_reads_each_field_as_the_policy_says(
    api: Api, policy: Policy, role: str
) -> None:
    await seed_fraud(api)
    caller = Api(api.database, actor=f"token:{role}", access=policy.access((Grant(role),)))
    wrong: list[str] = []
    checked = 0
    for type_name, (template, route) in ROUTES.items():
        reached = await api.run(template % "__typename")
        assert f"'__typename': '{type_name}'" in str(reached.data), (type_name, reached)
        if not all(policy.decide(role, "fraud", step, READ) for step in route):
            result = await caller.run(template % "__typename")
            assert "FORBIDDEN" in [code for code, _ in codes(result)], (role, type_name)
            continue
        graphql_type = schema._schema.type_map[type_name]
        assert isinstance(graphql_type, GraphQLObjectType)
        for field_name, field in graphql_type.fields.items():
            if any(arg.type.__class__.__name__ == "GraphQLNonNull" for arg in field.args.values()):
                continue  # fields that need arguments are reached by their own tests
            coordinate = f"{type_name}.{field_name}"
            allowed = policy.decide(role, "fraud", coordinate, READ)
            result = await caller.run(template % selection(type_name, field_name))
            forbidden = [p for code, p in codes(result) if code == "FORBIDDEN"]
            denied_here = any(p and p[-1] == field_name for p in forbidden)
            checked += 1
            if allowed == denied_here or (allowed and forbidden):
                wrong.append(f"{role} {coordinate}: policy {allowed}, got {codes(result)}")
    assert checked > 80  # the fields reached (viewers reach no journal entry)
    assert not wrong, "\n".join(wrong)


# --- per field, per project -----------------------------------------------------------------


async def test_a_denied_nullable_field_is_null_with_forbidden_and_the_rest_answers(
    api: Api, policy: Policy
) -> None:
    await seed_fraud(api)
    viewer = as_user(api, policy, user("bob", "readers"))
    result = await viewer.run(VERSIONS % "number hyperparameters artifact { format uri }")
    node = result.data["model"]["versions"]["edges"][0]["node"]
    assert node == {
        "number": 1,
        "hyperparameters": None,
        "artifact": {"format": "onnx", "uri": None},
    }
    assert sorted(p[-1] for code, p in codes(result) if code == "FORBIDDEN") == [
        "hyperparameters",
        "uri",
    ]


async def test_roles_per_project_decide_each_entity_by_its_project(
    api: Api, policy: Policy
) -> None:
    # alice maintains fraud and only views elsewhere: one query over both projects shows the
    # hyperparameters of fraud's versions and hides those of risk's.
    await seed_fraud(api)
    await factories.project(api, "risk")
    other = await factories.model(api, "scorer", project="risk")
    await factories.version(api, other["id"], hyperparameters={"k": 1})
    alice = as_user(api, policy, user("alice"))
    result = await alice.run(
        "{ models(first: 10) { edges { node { name project { name }"
        " versions(first: 1) { edges { node { hyperparameters } } } } } } }"
    )
    seen = {
        e["node"]["name"]: e["node"]["versions"]["edges"][0]["node"]["hyperparameters"]
        for e in result.data["models"]["edges"]
    }
    assert seen == {"detector": {"depth": 6}, "scorer": None}
    assert [code for code, _ in codes(result)] == ["FORBIDDEN"]


# --- visibility: lists, counts, node, search, lineage, audit ---------------------------------


async def test_hidden_projects_are_in_no_list_count_node_or_audit_entry(
    api: Api, policy: Policy
) -> None:
    await seed_fraud(api)
    await factories.project(api, "secret")
    hidden = await factories.model(api, "hidden-model", project="secret")
    erin = as_user(api, policy, user("erin"))  # a viewer of fraud only
    data = await erin(
        "{ projects { totalCount edges { node { name } } }"
        " models { totalCount edges { node { name } } }"
        " datasets { totalCount } experiments { totalCount } }"
    )
    assert data["projects"] == {"totalCount": 1, "edges": [{"node": {"name": "fraud"}}]}
    assert data["models"]["totalCount"] == 1
    assert [e["node"]["name"] for e in data["models"]["edges"]] == ["detector"]
    assert (await erin("query($id: ID!) { node(id: $id) { id } }", id=hidden["id"])) == {
        "node": None
    }
    # As a model that does not exist.
    hidden_by_name = '{ model(project: "secret", name: "hidden-model") { name } }'
    assert await erin.run(hidden_by_name) == await erin.run(hidden_by_name.replace("hidden", "no"))
    assert (await erin(hidden_by_name)) == {"model": None}
    # alice maintains fraud: the journal she may read is fraud's alone.
    alice = as_user(api, policy, user("alice"))
    log = await alice("{ auditLog(first: 100) { totalCount edges { node { action } } } }")
    everything = await api("{ auditLog(first: 100) { totalCount } }")
    assert 0 < log["auditLog"]["totalCount"] < everything["auditLog"]["totalCount"]
    async with api.database.read() as session:
        fraud_entries = await session.scalars(select(JournalRow).where(JournalRow.project_id == 1))
        assert log["auditLog"]["totalCount"] == len(list(fraud_entries))


async def test_a_lineage_edge_to_a_hidden_project_is_not_shown(api: Api, policy: Policy) -> None:
    await factories.project(api, "fraud")
    await factories.project(api, "secret")
    dataset = await factories.dataset(api, "private-data", project="secret")
    data_version = await factories.dataset_version(api, dataset["id"])
    model = await factories.model(api, "detector")
    version = await factories.version(api, model["id"], trainingDatasets=[data_version["id"]])
    query = (
        "query($id: ID!) { lineage(id: $id) { nodes { __typename } edges { kind } }"
        " node(id: $id) { ... on ModelVersion { datasets { __typename } } } }"
    )
    full = await api(query, id=version["id"])
    assert len(full["lineage"]["edges"]) == 1
    erin = as_user(api, policy, user("erin"))
    seen = await erin(query, id=version["id"])
    assert seen["lineage"] == {"nodes": [], "edges": []}
    assert seen["node"]["datasets"] == []


# --- writes ---------------------------------------------------------------------------------


async def denied_entries(database: Database) -> list[JournalRow]:
    async with database.read() as session:
        rows = await session.scalars(select(JournalRow).where(JournalRow.action == "write.denied"))
        return list(rows)


async def test_a_denied_mutation_changes_nothing_and_is_journaled(api: Api, policy: Policy) -> None:
    await seed_fraud(api)
    viewer = as_user(api, policy, user("bob", "readers"))
    code, message = await viewer.error(
        factories.REGISTER, input={"project": "fraud", "name": "sneaky"}
    )
    assert code == "FORBIDDEN" and "Mutation.registerModel" in message
    # erin views fraud; carol contributes to fraud only: registering in another project fails
    # after the change was made, so it rolls back.
    await factories.project(api, "risk")
    carol = as_user(api, policy, user("carol"))
    code, _ = await carol.error(factories.REGISTER, input={"project": "risk", "name": "sneaky"})
    assert code == "FORBIDDEN"
    assert (await api("{ models { totalCount } }"))["models"]["totalCount"] == 1
    denied = await denied_entries(api.database)
    assert [(e.actor, e.changes["after"]["mutation"]) for e in denied] == [
        ("bob", "Mutation.registerModel"),
        ("carol", "Mutation.registerModel"),
    ]
    assert denied[1].project_id is not None  # refused in risk, which the entry names


async def test_a_contributor_edits_what_it_created_and_nothing_else(
    api: Api, policy: Policy
) -> None:
    await seed_fraud(api)  # as "tester"
    carol = as_user(api, policy, user("carol"))
    update = "mutation($input: UpdateModelInput!) { updateModel(input: $input) { model { description } } }"
    theirs = await api('{ model(project: "fraud", name: "detector") { id } }')
    code, message = await carol.error(
        update, input={"id": theirs["model"]["id"], "description": "mine now"}
    )
    assert code == "FORBIDDEN" and "created" in message
    own = await factories.model(carol, "carols-model")
    data = await carol(update, input={"id": own["id"], "description": "better"})
    assert data["updateModel"]["model"]["description"] == "better"
    # A maintainer of fraud edits anything there.
    alice = as_user(api, policy, user("alice"))
    await alice(update, input={"id": theirs["model"]["id"], "description": "reviewed"})


# --- the policy itself -------------------------------------------------------------------------


def test_a_token_acts_in_its_project_only(policy: Policy) -> None:
    token = policy.access((Grant("maintainer", "fraud"),))
    assert token.allows("Mutation.updateModel", "write", "fraud")
    assert not token.allows("Mutation.updateModel", "write", "risk")
    assert not token.allows("Model.name", READ, None)
    assert token.visible().only == frozenset({"fraud"})


def test_no_subject_can_be_named_like_a_role(policy: Policy) -> None:
    # A provider's user called "admin" is user:admin, which holds no role.
    access = access_of(policy, user("admin"))
    assert access.verdict("Model.name") is Verdict.DENY


def test_the_policy_reloads_when_its_files_change_and_keeps_the_old_one_when_broken(
    tmp_path: Path,
) -> None:
    files = policy_in(tmp_path / "p", extra="")
    policies = Policies(files)
    bob = user("bob")
    assert access_of(policies.current, bob).verdict("Model.name") is Verdict.DENY
    with files.policy.open("a") as f:
        f.write("g, user:bob, viewer, *\n")
    reloaded = policies.reload_if_changed()
    assert reloaded is not None and reloaded.digest != Policy(policy_in(tmp_path / "q", "")).digest
    assert access_of(policies.current, bob).verdict("Model.name") is Verdict.ALLOW
    files.model.write_text("[broken")
    assert policies.reload_if_changed() is None
    assert access_of(policies.current, bob).verdict("Model.name") is Verdict.ALLOW


# --- writes reach only what the caller sees, in projects it may write ------------------------

LOG_METRICS = (
    "mutation($input: LogMetricsInput!) { logMetrics(input: $input) { modelVersion { id } } }"
)
SET_TAGS = "mutation($input: SetTagsInput!) { setTags(input: $input) { node { id } } }"


async def test_a_caller_seeing_one_project_writes_nowhere_else(api: Api, policy: Policy) -> None:
    await seed_fraud(api)
    await factories.project(api, "risk")
    other = await factories.model(api, "scorer", project="risk")
    frank = as_user(api, policy, user("frank"))  # a contributor of fraud, nothing else
    code, _ = await frank.error(factories.REGISTER, input={"project": "risk", "name": "planted"})
    assert code == "NOT_FOUND"  # risk is hidden from frank: as if it did not exist
    grace = as_user(api, policy, user("grace"))  # a maintainer of fraud only
    code, _ = await grace.error(factories.PROJECT, name="newly")
    assert code == "FORBIDDEN"
    tags = {"id": other["id"], "tags": [{"key": "owned", "value": "by-grace"}]}
    hidden = await grace.run(SET_TAGS, input=tags)
    missing = await grace.run(SET_TAGS, input={**tags, "id": "TW9kZWw6OTk5"})  # Model:999
    assert codes(hidden) == codes(missing) == [("NOT_FOUND", ["setTags"])]
    assert [e.message for e in hidden.errors or ()] != []
    names = await api("{ models { edges { node { name tags { key } } } } }")
    assert sorted(e["node"]["name"] for e in names["models"]["edges"]) == ["detector", "scorer"]
    assert all(not e["node"]["tags"] for e in names["models"]["edges"])


async def test_a_write_cannot_reference_an_entity_of_a_hidden_project(
    api: Api, policy: Policy
) -> None:
    await seed_fraud(api)
    await factories.project(api, "secret")
    dataset = await factories.dataset(api, "private", project="secret")
    hidden = await factories.dataset_version(api, dataset["id"])
    version = await api(VERSIONS % "id")
    version_id = version["model"]["versions"]["edges"][0]["node"]["id"]
    frank = as_user(api, policy, user("frank"))
    metric = {"name": "auc", "value": 0.9, "datasetVersion": hidden["id"]}
    code, _ = await frank.error(LOG_METRICS, input={"id": version_id, "metrics": [metric]})
    assert code == "NOT_FOUND"
    model = await api('{ model(project: "fraud", name: "detector") { id } }')
    code, _ = await frank.error(
        factories.CREATE_VERSION,
        input={"model": model["model"]["id"], "trainingDatasets": [hidden["id"]]},
    )
    assert code == "NOT_FOUND"


async def test_whoever_deletes_an_id_does_not_own_the_next_entity_to_take_it(
    api: Api, policy: Policy
) -> None:
    await seed_fraud(api)
    carol = as_user(api, policy, user("carol"))  # a contributor of fraud
    mine = await factories.model(carol, "short-lived")
    deleted = await carol(
        "mutation($id: ID!) { deleteModel(input: {id: $id}) { deletedId } }", id=mine["id"]
    )
    assert deleted["deleteModel"]["deletedId"] == mine["id"]
    theirs = await factories.model(api, "successor")  # SQLite may give it the same id
    update = "mutation($input: UpdateModelInput!) { updateModel(input: $input) { model { id } } }"
    code, _ = await carol.error(update, input={"id": theirs["id"], "description": "mine?"})
    assert code == "FORBIDDEN"


async def test_a_value_without_a_project_is_decided_by_its_entity_s(
    api: Api, tmp_path: Path
) -> None:
    # With a card's revisions made sensitive, alice (maintainer of fraud, viewer elsewhere)
    # reads fraud's revisions and not risk's: a revision has no project of its own.
    policy = Policy(
        policy_in(tmp_path / "p", PEOPLE + "g2, DocumentRevision.markdown, sensitive\n")
    )
    await factories.project(api, "fraud")
    await factories.project(api, "risk")
    upsert = "mutation($input: UpsertDocumentInput!) { upsertDocument(input: $input) { document { id } } }"
    for project, name in (("fraud", "detector"), ("risk", "scorer")):
        model = await factories.model(api, name, project=project)
        await api(upsert, input={"subject": model["id"], "markdown": f"# {project} card"})
    alice = as_user(api, policy, user("alice"))
    result = await alice.run(
        "{ models { edges { node { name card { revisions { edges { node { markdown } } } } } } } }"
    )
    seen = {
        e["node"]["name"]: e["node"]["card"]["revisions"]["edges"][0]["node"]["markdown"]
        for e in result.data["models"]["edges"]
    }
    assert seen == {"detector": "# fraud card", "scorer": None}
    assert [code for code, _ in codes(result)] == ["FORBIDDEN"]
