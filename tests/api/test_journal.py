"""Every mutation journals its change in the same transaction; a failed one leaves nothing."""

from sqlalchemy import func, select

from mlcatalog.store.database import Database
from mlcatalog.store.rows import JournalRow, ModelRow, ModelVersionRow
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
