"""registerModelVersions: many versions in one transaction, all or none, retried by a key."""

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select, update

from mlcatalog.auth.access import Policy
from mlcatalog.store import audit
from mlcatalog.store.journal import Action, EntityType
from mlcatalog.store.rows import (
    IdempotencyKeyRow,
    JournalRow,
    LineageEdgeRow,
    MetricRow,
    ModelVersionRow,
    ModelVersionTagRow,
)
from tests import factories
from tests.api.test_authorization import PEOPLE, as_user, user
from tests.conftest import Api
from tests.policies import policy_in

REGISTER_VERSIONS = """
mutation($input: RegisterModelVersionsInput!) {
  registerModelVersions(input: $input) {
    replayed
    modelVersions { id number version stage metric(name: "auc") }
  }
}
"""


def items(model_id: str, count: int, start: int = 0, metrics: int = 1) -> list[dict[str, Any]]:
    return [
        {
            "model": model_id,
            "version": f"1.{start + i}.0",
            "framework": "xgboost",
            "hyperparameters": {"depth": i},
            "artifact": {"uri": f"s3://models/{start + i}.onnx", "format": "onnx"},
            "tags": [{"key": "batch", "value": "nightly"}],
            "metrics": [
                {"name": "auc" if m == 0 else f"m{m}", "value": 0.9} for m in range(metrics)
            ],
        }
        for i in range(count)
    ]


async def register(api: Api, versions: list[dict[str, Any]], **fields: Any) -> dict[str, Any]:
    data = await api(REGISTER_VERSIONS, input={"versions": versions, **fields})
    return dict(data["registerModelVersions"])


async def count(api: Api, row: Any) -> int:
    async with api.database.engine.connect() as connection:
        return int(await connection.scalar(select(func.count()).select_from(row)) or 0)


@pytest.fixture
async def model_id(api: Api) -> str:
    await factories.project(api)
    model = await factories.model(api)
    await factories.version(api, model["id"])  # number 1: the batch continues from it
    return model["id"]


async def test_a_batch_gets_numbers_tags_metrics_and_one_journal_entry_per_version(
    api: Api, model_id: str
) -> None:
    other = await factories.model(api, "scorer")
    result = await register(api, [*items(model_id, 2), *items(other["id"], 1, start=5)])
    versions = result["modelVersions"]
    assert result["replayed"] is False
    assert [(v["number"], v["version"]) for v in versions] == [
        (2, "1.0.0"),
        (3, "1.1.0"),
        (1, "1.5.0"),
    ]
    assert await count(api, ModelVersionTagRow) == 3
    assert all(v["metric"] == 0.9 and v["stage"] == "NONE" for v in versions)
    async with api.database.engine.connect() as connection:
        actions = list(
            await connection.scalars(
                select(JournalRow.action).where(JournalRow.entity_type == EntityType.MODEL_VERSION)
            )
        )
    assert actions.count("model_version.created") == 4  # the factory's and the batch's three
    assert actions.count("model_version.metrics_logged") == 3
    async with api.database.read() as session:
        chain = await audit.verify(session)
    assert chain.first_bad_seq is None and chain.entries > 7  # the batch's entries are linked


async def test_statements_do_not_grow_with_the_batch(api: Api, model_id: str) -> None:
    counter = api.count_statements()
    await register(api, items(model_id, 1))
    one = len(counter)
    counter.statements.clear()
    await register(api, items(model_id, 100, start=1, metrics=4))
    assert len(counter) == one, [s[:80] for s in counter.statements]
    assert await count(api, ModelVersionRow) == 102
    assert await count(api, MetricRow) == 401


async def test_one_bad_item_refuses_the_whole_batch(api: Api, model_id: str) -> None:
    batch = items(model_id, 3)
    batch[2]["metrics"] = [{"name": "auc", "value": float("nan")}]
    code, message = await api.error(REGISTER_VERSIONS, input={"versions": batch})
    assert code == "INVALID_ARGUMENT"
    batch[2] = {**items(model_id, 1)[0], "hyperparameters": [1]}
    code, message = await api.error(REGISTER_VERSIONS, input={"versions": batch})
    assert (code, message) == (
        "INVALID_ARGUMENT",
        "versions[2]: hyperparameters must be a JSON object, not list",
    )
    batch[2] = {**items(model_id, 1)[0], "version": "1.1.0"}  # also item 1's
    code, message = await api.error(REGISTER_VERSIONS, input={"versions": batch})
    assert code == "ALREADY_EXISTS" and message.startswith("versions[2]:")
    assert await count(api, ModelVersionRow) == 1
    assert await count(api, MetricRow) == 0


async def test_a_version_taken_or_a_stage_refuses_the_batch(api: Api, model_id: str) -> None:
    await register(api, items(model_id, 1))
    code, message = await api.error(REGISTER_VERSIONS, input={"versions": items(model_id, 2)})
    assert (code, message) == ("ALREADY_EXISTS", "versions[0]: version 1.0.0 is already taken")
    staged = [*items(model_id, 1, start=7), {**items(model_id, 1, start=8)[0], "stage": "STAGING"}]
    code, message = await api.error(REGISTER_VERSIONS, input={"versions": staged})
    assert code == "INVALID_ARGUMENT" and message.startswith("versions[1]: a batch creates")
    assert await count(api, ModelVersionRow) == 2


async def test_a_retry_with_its_key_returns_the_first_result_and_writes_nothing(
    api: Api, model_id: str
) -> None:
    first = await register(api, items(model_id, 3), idempotencyKey="nightly-42")
    retry = await register(api, items(model_id, 3), idempotencyKey="nightly-42")
    assert retry["replayed"] is True
    assert retry["modelVersions"] == first["modelVersions"]
    assert await count(api, ModelVersionRow) == 4
    assert await count(api, JournalRow) > 0
    journal = await count(api, JournalRow)
    await register(api, items(model_id, 3), idempotencyKey="nightly-42")
    assert await count(api, JournalRow) == journal


async def test_a_key_used_for_another_request_is_a_conflict(api: Api, model_id: str) -> None:
    await register(api, items(model_id, 1), idempotencyKey="k")
    code, message = await api.error(
        REGISTER_VERSIONS, input={"versions": items(model_id, 1, start=1), "idempotencyKey": "k"}
    )
    assert (code, message) == (
        "CONFLICT",
        "idempotency key 'k' was used for another request: use a new key",
    )
    other = Api(api.database, actor="someone-else")  # keys are per caller
    assert (await register(other, items(model_id, 1, start=1), idempotencyKey="k"))[
        "replayed"
    ] is False


async def test_limits_bound_versions_and_metrics(api: Api, model_id: str) -> None:
    code, message = await api.error(
        REGISTER_VERSIONS, input={"versions": items(model_id, 1001, metrics=0)}
    )
    assert code == "INVALID_ARGUMENT" and "1000" in message
    code, message = await api.error(
        REGISTER_VERSIONS, input={"versions": items(model_id, 11, metrics=1000)}
    )
    assert (code, message) == ("INVALID_ARGUMENT", "at most 10000 metrics per request")
    code, _ = await api.error(REGISTER_VERSIONS, input={"versions": []})
    assert code == "INVALID_ARGUMENT"


async def test_a_viewer_or_a_contributor_elsewhere_registers_nothing(
    api: Api, model_id: str, tmp_path: Path
) -> None:
    policy = Policy(policy_in(tmp_path / "policies", PEOPLE))
    await factories.project(api, "risk")
    risk = await factories.model(api, "scorer", project="risk")
    viewer = as_user(api, policy, user("bob", "readers"))
    code, _ = await viewer.error(REGISTER_VERSIONS, input={"versions": items(model_id, 1)})
    assert code == "FORBIDDEN"
    carol = as_user(api, policy, user("carol"))  # contributor of fraud, viewer elsewhere
    code, _ = await carol.error(
        REGISTER_VERSIONS, input={"versions": [*items(model_id, 1), *items(risk["id"], 1)]}
    )
    assert code == "FORBIDDEN"
    assert await count(api, ModelVersionRow) == 1
    assert (await register(carol, items(model_id, 2)))["modelVersions"][1]["number"] == 3


async def test_lineage_edges_go_in_with_the_batch_and_a_missing_upstream_refuses_it(
    api: Api, model_id: str
) -> None:
    dataset = await factories.dataset(api)
    train = await factories.dataset_version(api, dataset["id"])
    run = await factories.run(api)
    batch = items(model_id, 2)
    for item in batch:
        item["trainingDatasets"] = [train["id"], train["id"]]
        item["evaluationDatasets"] = [train["id"]]
    batch[0]["sourceRun"] = run["id"]
    await register(api, batch)
    assert await count(api, LineageEdgeRow) == 5
    async with api.database.engine.connect() as connection:
        linked = await connection.scalar(
            select(func.count()).where(JournalRow.action == Action.LINEAGE_LINKED)
        )
    assert linked == 5
    batch = items(model_id, 2, start=5)
    batch[1]["trainingDatasets"] = ["RGF0YXNldFZlcnNpb246OTk5"]  # DatasetVersion:999
    code, message = await api.error(REGISTER_VERSIONS, input={"versions": batch})
    assert (code, message) == ("NOT_FOUND", "versions[1]: dataset version 999 does not exist")
    assert await count(api, ModelVersionRow) == 3


async def test_an_expired_key_registers_again(api: Api, model_id: str) -> None:
    batch = [{k: v for k, v in item.items() if k != "version"} for item in items(model_id, 2)]
    await register(api, batch, idempotencyKey="daily")
    async with api.database.engine.begin() as connection:
        await connection.execute(
            update(IdempotencyKeyRow).values(expires_at=datetime.now(UTC) - timedelta(seconds=1))
        )
    again = await register(api, batch, idempotencyKey="daily")
    assert again["replayed"] is False
    assert [v["number"] for v in again["modelVersions"]] == [4, 5]
    assert (await register(api, batch, idempotencyKey="daily"))["replayed"] is True
    assert await count(api, IdempotencyKeyRow) == 1
