"""Model cards: typed sections, Markdown, and a revision per edit."""

from tests import factories
from tests.conftest import Api

UPSERT = """
mutation($input: UpsertDocumentInput!) {
  upsertDocument(input: $input) { document { kind revision intendedUse factors markdown updatedBy } }
}
"""
REVISIONS = """
query { model(project: "fraud", name: "fraud-detector") {
  card { revision revisions { totalCount edges { node { revision intendedUse } } } } } }
"""


async def test_each_edit_keeps_the_earlier_text_as_a_revision(api: Api) -> None:
    catalog = await factories.catalog(api)
    subject = catalog["model"]["id"]
    first = await api(
        UPSERT, input={"subject": subject, "intendedUse": "Score payments", "factors": "Region"}
    )
    assert first["upsertDocument"]["document"] == {
        "kind": "MODEL_CARD",
        "revision": 1,
        "intendedUse": "Score payments",
        "factors": "Region",
        "markdown": None,
        "updatedBy": "tester",
    }
    second = await api(UPSERT, input={"subject": subject, "intendedUse": "Score card payments"})
    assert second["upsertDocument"]["document"]["revision"] == 2
    assert second["upsertDocument"]["document"]["factors"] == "Region"
    card = (await api(REVISIONS))["model"]["card"]
    assert card["revisions"]["totalCount"] == 2
    assert [e["node"] for e in card["revisions"]["edges"]] == [
        {"revision": 2, "intendedUse": "Score card payments"},
        {"revision": 1, "intendedUse": "Score payments"},
    ]


async def test_an_unchanged_card_makes_no_revision(api: Api) -> None:
    catalog = await factories.catalog(api)
    subject = catalog["model"]["id"]
    await api(UPSERT, input={"subject": subject, "markdown": "# Fraud"})
    again = await api(UPSERT, input={"subject": subject, "markdown": "# Fraud"})
    assert again["upsertDocument"]["document"]["revision"] == 1


async def test_a_stale_expected_revision_is_a_conflict(api: Api) -> None:
    catalog = await factories.catalog(api)
    subject = catalog["model"]["id"]
    await api(UPSERT, input={"subject": subject, "markdown": "a", "expectedRevision": 0})
    code, message = await api.error(
        UPSERT, input={"subject": subject, "markdown": "b", "expectedRevision": 0}
    )
    assert code == "CONFLICT"
    assert "revision 1" in message


async def test_version_and_dataset_cards(api: Api) -> None:
    catalog = await factories.catalog(api)
    dataset = await factories.dataset(api)
    version_card = await api(UPSERT, input={"subject": catalog["version"]["id"], "markdown": "v"})
    assert version_card["upsertDocument"]["document"]["kind"] == "MODEL_CARD"
    dataset_card = await api(UPSERT, input={"subject": dataset["id"], "markdown": "d"})
    assert dataset_card["upsertDocument"]["document"]["kind"] == "DATASET_CARD"


async def test_a_card_on_a_run_is_invalid(api: Api) -> None:
    await factories.project(api)
    run = await factories.run(api)
    code, _ = await api.error(UPSERT, input={"subject": run["id"], "markdown": "x"})
    assert code == "INVALID_ARGUMENT"
