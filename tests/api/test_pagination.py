"""Keyset pages: every item once, in order, with totals; bad cursors and sizes are refused."""

import base64
import json
from typing import Any

import pytest

from tests import factories
from tests.conftest import Api

PAGE = """
query($first: Int, $after: String, $order: ModelOrder) {
  models(first: $first, after: $after, orderBy: $order) {
    totalCount pageInfo { hasNextPage endCursor } edges { cursor node { name } }
  }
}
"""


async def walk(api: Api, size: int, order: dict[str, str] | None = None) -> list[str]:
    names: list[str] = []
    after = None
    while True:
        data = (await api(PAGE, first=size, after=after, order=order))["models"]
        assert data["totalCount"] == 7
        names += [e["node"]["name"] for e in data["edges"]]
        if not data["pageInfo"]["hasNextPage"]:
            return names
        after = data["pageInfo"]["endCursor"]


@pytest.mark.parametrize("size", [1, 3, 7, 50])
async def test_pages_cover_the_list_once_in_order(api: Api, size: int) -> None:
    await factories.project(api)
    names = [f"model-{c}" for c in "gbdface"]
    for name in names:
        await factories.model(api, name=name)
    assert await walk(api, size) == sorted(names)
    assert await walk(api, size, {"field": "NAME", "direction": "DESC"}) == sorted(
        names, reverse=True
    )
    assert await walk(api, size, {"field": "CREATED_AT", "direction": "ASC"}) == names


async def test_a_cursor_from_another_order_is_refused(api: Api) -> None:
    await factories.project(api)
    for name in ("a", "b"):
        await factories.model(api, name=name)
    cursor = (await api(PAGE, first=1))["models"]["pageInfo"]["endCursor"]
    code, _ = await api.error(
        PAGE, first=1, after=cursor, order={"field": "UPDATED_AT", "direction": "ASC"}
    )
    assert code == "INVALID_ARGUMENT"


@pytest.mark.parametrize("after", ["garbage", "eyJ4Ijp9", ""])
async def test_a_malformed_cursor_is_invalid(api: Api, after: str) -> None:
    code, _ = await api.error(PAGE, first=1, after=after)
    assert code == "INVALID_ARGUMENT"


@pytest.mark.parametrize("first", [-1, 501])
async def test_page_size_out_of_range_is_invalid(api: Api, first: int) -> None:
    code, message = await api.error(PAGE, first=first)
    assert code == "INVALID_ARGUMENT"
    assert "500" in message


async def test_nested_version_pages(api: Api) -> None:
    await factories.project(api)
    model = await factories.model(api)
    for _ in range(5):
        await factories.version(api, model["id"])
    query = """query($after: String) { model(project: "fraud", name: "fraud-detector") {
      versions(first: 2, after: $after) { totalCount pageInfo { hasNextPage endCursor } edges { node { number } } } } }"""
    seen: list[int] = []
    after = None
    while True:
        page = (await api(query, after=after))["model"]["versions"]
        assert page["totalCount"] == 5
        seen += [e["node"]["number"] for e in page["edges"]]
        if not page["pageInfo"]["hasNextPage"]:
            break
        after = page["pageInfo"]["endCursor"]
    assert seen == [5, 4, 3, 2, 1]


BACKWARD = """
query($last: Int, $before: String) {
  models(last: $last, before: $before) {
    pageInfo { hasPreviousPage hasNextPage startCursor endCursor } edges { node { name } }
  }
}
"""


@pytest.mark.parametrize("size", [1, 3, 7])
async def test_last_and_before_page_backwards_over_the_same_list(api: Api, size: int) -> None:
    await factories.project(api)
    names = [f"model-{c}" for c in "gbdface"]
    for name in names:
        await factories.model(api, name=name)
    pages: list[list[str]] = []
    before = None
    while True:
        data = (await api(BACKWARD, last=size, before=before))["models"]
        pages.append([e["node"]["name"] for e in data["edges"]])
        assert data["pageInfo"]["hasNextPage"] == (before is not None)
        if not data["pageInfo"]["hasPreviousPage"]:
            break
        before = data["pageInfo"]["startCursor"]
    assert [name for page in reversed(pages) for name in page] == sorted(names)
    assert all(len(page) == size for page in pages[:-1])


async def test_a_forward_page_says_where_it_starts_and_that_items_come_before(api: Api) -> None:
    await factories.project(api)
    for name in ("a", "b", "c"):
        await factories.model(api, name=name)
    query = """query($after: String) { models(first: 1, after: $after) {
      pageInfo { hasPreviousPage startCursor endCursor } edges { node { name } } } }"""
    first = (await api(query))["models"]["pageInfo"]
    assert first["hasPreviousPage"] is False
    assert first["startCursor"] == first["endCursor"]
    second = (await api(query, after=first["endCursor"]))["models"]
    assert second["pageInfo"]["hasPreviousPage"] is True
    assert [e["node"]["name"] for e in second["edges"]] == ["b"]


@pytest.mark.parametrize(
    "arguments",
    ["first: 1, last: 1", 'first: 1, before: "x"', 'last: 1, after: "x"', "last: 501"],
)
async def test_mixed_or_oversized_directions_are_invalid(api: Api, arguments: str) -> None:
    code, _ = await api.error(f"{{ models({arguments}) {{ edges {{ cursor }} }} }}")
    assert code == "INVALID_ARGUMENT"


async def test_nested_versions_page_backwards(api: Api) -> None:
    await factories.project(api)
    model = await factories.model(api)
    for _ in range(5):
        await factories.version(api, model["id"])
    query = """query($before: String) { model(project: "fraud", name: "fraud-detector") {
      versions(last: 2, before: $before) { pageInfo { hasPreviousPage startCursor } edges { node { number } } } } }"""
    pages: list[list[int]] = []
    before = None
    while True:
        page = (await api(query, before=before))["model"]["versions"]
        pages.append([e["node"]["number"] for e in page["edges"]])
        if not page["pageInfo"]["hasPreviousPage"]:
            break
        before = page["pageInfo"]["startCursor"]
    assert pages == [[2, 1], [4, 3], [5]]


def forged(cursor: str, replace: dict[int, Any]) -> str:
    """A cursor the API returned, with some of its key's values replaced (index 0: the scope)."""
    decoded = json.loads(base64.urlsafe_b64decode(cursor))
    for index, value in replace.items():
        decoded[index] = value
    return base64.urlsafe_b64encode(json.dumps(decoded).encode()).decode()


# Values no column of the key could hold: each failed in a driver, as INTERNAL, on one backend.
FORGED_ROOT = [
    {2: 2**70},  # SQLite: OverflowError
    {2: -(2**63) - 1},
    {2: 2**31},  # PostgreSQL: models.id is a 32-bit integer
    {1: "a\x00b"},  # PostgreSQL stores no NUL
    {1: "\ud800"},  # no UTF-8 for a lone surrogate
    {1: "x" * 201},  # longer than any name
    {2: float("inf")},
]


@pytest.mark.parametrize("replace", FORGED_ROOT)
async def test_a_forged_cursor_of_a_root_list_is_invalid(api: Api, replace: dict[int, Any]) -> None:
    await factories.project(api)
    for name in ("a", "b"):
        await factories.model(api, name=name)
    cursor = (await api(PAGE, first=1))["models"]["pageInfo"]["endCursor"]
    code, _ = await api.error(PAGE, first=1, after=forged(cursor, replace))
    assert code == "INVALID_ARGUMENT"


async def test_a_forged_timestamp_at_the_end_of_the_calendar_is_invalid(api: Api) -> None:
    await factories.project(api)
    await factories.model(api, name="a")
    order = {"field": "CREATED_AT", "direction": "ASC"}
    cursor = (await api(PAGE, first=1, order=order))["models"]["pageInfo"]["endCursor"]
    for moment in ("0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00"):
        code, _ = await api.error(PAGE, first=1, after=forged(cursor, {1: moment}), order=order)
        assert code == "INVALID_ARGUMENT"


METRICS = """query($id: ID!, $after: String) { node(id: $id) { ... on ModelVersion {
  metrics(first: 1, after: $after) { pageInfo { endCursor } edges { node { name } } } } } }"""
VERSIONS = """query($after: String) { model(project: "fraud", name: "fraud-detector") {
  versions(first: 1, after: $after) { pageInfo { endCursor } edges { node { id } } } } }"""


async def test_a_forged_cursor_of_a_child_list_is_invalid(api: Api) -> None:
    await factories.project(api)
    model = await factories.model(api)
    metrics = [{"name": "auc", "value": 0.9}, {"name": "loss", "value": 0.1}]
    version = await factories.version(api, model["id"], metrics=metrics)
    cursor = (await api(METRICS, id=version["id"]))["node"]["metrics"]["pageInfo"]["endCursor"]
    # The key is (name, id); metric ids are 64-bit, so the largest is a key, past it none is.
    for replace in ({1: "a\x00b"}, {2: 2**63}, {1: "x" * 201}, {2: 1.5}):
        code, _ = await api.error(METRICS, id=version["id"], after=forged(cursor, replace))
        assert code == "INVALID_ARGUMENT", replace
    page = await api(METRICS, id=version["id"], after=forged(cursor, {2: 2**63 - 1}))
    assert [e["node"]["name"] for e in page["node"]["metrics"]["edges"]] == ["loss"]
    # A version's number is a 32-bit integer.
    cursor = (await api(VERSIONS))["model"]["versions"]["pageInfo"]["endCursor"]
    code, _ = await api.error(VERSIONS, after=forged(cursor, {1: 2**31}))
    assert code == "INVALID_ARGUMENT"
