"""Version numbers stay gap-free and unique when many writers create versions at once."""

import asyncio

from sqlalchemy import select

from mlcatalog.store.database import Database
from mlcatalog.store.rows import ModelVersionRow
from tests import factories
from tests.conftest import Api

CREATORS = 20


async def test_twenty_concurrent_creators_get_numbers_one_to_twenty(
    api: Api, database: Database
) -> None:
    await factories.project(api)
    model = await factories.model(api)
    # Each call opens its own transaction on its own connection, as concurrent requests do.
    created = await asyncio.gather(*(factories.version(api, model["id"]) for _ in range(CREATORS)))
    assert sorted(v["number"] for v in created) == list(range(1, CREATORS + 1))
    async with database.read() as session:
        numbers = list(
            await session.scalars(select(ModelVersionRow.number).order_by(ModelVersionRow.number))
        )
    assert numbers == list(range(1, CREATORS + 1))


async def test_concurrent_duplicate_semvers_let_exactly_one_through(api: Api) -> None:
    await factories.project(api)
    model = await factories.model(api)
    results = await asyncio.gather(
        *(
            api.run(factories.CREATE_VERSION, input={"model": model["id"], "version": "1.0.0"})
            for _ in range(5)
        )
    )
    ok = [r for r in results if not r.errors]
    refused = [r.errors[0].extensions["code"] for r in results if r.errors]
    assert len(ok) == 1
    assert refused == ["ALREADY_EXISTS"] * 4


async def test_concurrent_promotions_leave_one_version_in_production(api: Api) -> None:
    await factories.project(api)
    model = await factories.model(api)
    staged = [await factories.version(api, model["id"], stage="STAGING") for _ in range(5)]
    stage = """mutation($input: SetModelVersionStageInput!) {
      setModelVersionStage(input: $input) { modelVersion { number } } }"""
    await asyncio.gather(
        *(api(stage, input={"id": v["id"], "stage": "PRODUCTION"}) for v in staged)
    )
    data = await api(
        'query { model(project: "fraud", name: "fraud-detector") {'
        " versions { edges { node { stage } } } } }"
    )
    stages = [e["node"]["stage"] for e in data["model"]["versions"]["edges"]]
    assert sorted(stages) == ["ARCHIVED"] * 4 + ["PRODUCTION"]


async def test_concurrent_deployments_never_take_more_than_all_the_traffic(api: Api) -> None:
    await factories.project(api)
    model = await factories.model(api)
    made = [await factories.version(api, model["id"]) for _ in range(4)]
    record = """mutation($input: RecordDeploymentInput!) {
      recordDeployment(input: $input) { deployment { id } } }"""
    results = await asyncio.gather(
        *(
            api.run(
                record,
                input={
                    "version": v["id"],
                    "environment": "production",
                    "endpoint": "https://fraud.example.com/score",
                    "trafficShare": 0.4,
                },
            )
            for v in made
        )
    )
    refused = [r.errors[0].extensions["code"] for r in results if r.errors]
    assert (len(results) - len(refused), refused) == (2, ["FAILED_PRECONDITION"] * 2)
