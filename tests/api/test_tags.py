"""setTags and removeTags on models, versions and datasets."""

from tests import factories
from tests.conftest import Api


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
