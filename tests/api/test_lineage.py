"""Lineage: implicit edges from versions and runs, linkLineage, the cycle rule and the walk."""

import asyncio
from itertools import pairwise
from typing import Any

import pytest
from strawberry import relay

from mlcatalog.api import limits
from mlcatalog.catalog.errors import CatalogError
from mlcatalog.catalog.lineage import EdgeKind, add_edge
from mlcatalog.store.database import Origin
from mlcatalog.store.rows import LineageEdgeRow, utcnow
from tests import factories
from tests.conftest import Api, StatementCounter

LINEAGE = """
query($id: ID!, $direction: LineageDirection!, $depth: Int!) {
  lineage(id: $id, direction: $direction, depth: $depth) {
    root { __typename }
    nodes { __typename ... on DatasetVersion { label } ... on Run { name } ... on ModelVersion { number } }
    edges { kind depth upstream { __typename } downstream { __typename } }
  }
}
"""
LINK = """
mutation($input: LinkLineageInput!) { linkLineage(input: $input) { edge { kind } } }
"""


async def chain(api: Api) -> dict[str, Any]:
    """raw v1 → (DERIVED_FROM) clean v1 → (USED_BY) run → (PRODUCED) version 1 → version 2."""
    await factories.project(api)
    raw = await factories.dataset_version(api, (await factories.dataset(api, "raw"))["id"], "v1")
    clean = await factories.dataset_version(
        api, (await factories.dataset(api, "clean"))["id"], "v1"
    )
    await api(
        LINK, input={"kind": "DERIVED_FROM", "upstream": raw["id"], "downstream": clean["id"]}
    )
    run = await factories.run(api, inputs=[clean["id"]])
    model = await factories.model(api)
    v1 = await factories.version(
        api, model["id"], sourceRun=run["id"], trainingDatasets=[clean["id"]]
    )
    v2 = await factories.version(api, model["id"])
    await api(LINK, input={"kind": "DERIVED_FROM", "upstream": v1["id"], "downstream": v2["id"]})
    return {"raw": raw, "clean": clean, "run": run, "v1": v1, "v2": v2}


async def test_upstream_of_a_version_reaches_the_raw_data(api: Api) -> None:
    nodes = await chain(api)
    data = (await api(LINEAGE, id=nodes["v2"]["id"], direction="UPSTREAM", depth=5))["lineage"]
    assert data["root"] == {"__typename": "ModelVersion"}
    kinds = sorted((e["kind"], e["depth"]) for e in data["edges"])
    assert kinds == [
        ("DERIVED_FROM", 1),
        ("DERIVED_FROM", 3),
        ("PRODUCED", 2),
        ("TRAINED_ON", 2),
        ("USED_BY", 3),
    ]
    labels = sorted(
        n.get("label", "") for n in data["nodes"] if n["__typename"] == "DatasetVersion"
    )
    assert labels == ["v1", "v1"]


async def test_depth_bounds_the_walk(api: Api) -> None:
    nodes = await chain(api)
    data = (await api(LINEAGE, id=nodes["v2"]["id"], direction="UPSTREAM", depth=1))["lineage"]
    assert [e["kind"] for e in data["edges"]] == ["DERIVED_FROM"]
    assert data["nodes"] == [{"__typename": "ModelVersion", "number": 1}]


async def test_downstream_of_raw_data_reaches_every_model_version(api: Api) -> None:
    nodes = await chain(api)
    data = (await api(LINEAGE, id=nodes["raw"]["id"], direction="DOWNSTREAM", depth=10))["lineage"]
    numbers = sorted(n["number"] for n in data["nodes"] if n["__typename"] == "ModelVersion")
    assert numbers == [1, 2]


async def test_wrong_kind_of_edge_is_invalid(api: Api) -> None:
    nodes = await chain(api)
    code, message = await api.error(
        LINK,
        input={"kind": "PRODUCED", "upstream": nodes["raw"]["id"], "downstream": nodes["v1"]["id"]},
    )
    assert code == "INVALID_ARGUMENT"
    assert "Run → ModelVersion" in message


async def test_an_edge_twice_is_already_exists(api: Api) -> None:
    nodes = await chain(api)
    code, _ = await api.error(
        LINK,
        input={
            "kind": "DERIVED_FROM",
            "upstream": nodes["v1"]["id"],
            "downstream": nodes["v2"]["id"],
        },
    )
    assert code == "ALREADY_EXISTS"


async def test_lineage_depth_out_of_range_is_invalid(api: Api) -> None:
    nodes = await chain(api)
    for depth in (0, 21):
        code, _ = await api.error(LINEAGE, id=nodes["v1"]["id"], direction="BOTH", depth=depth)
        assert code == "INVALID_ARGUMENT"


async def test_lineage_of_a_model_id_is_invalid(api: Api) -> None:
    await factories.project(api)
    model = await factories.model(api)
    code, _ = await api.error(LINEAGE, id=model["id"], direction="BOTH", depth=2)
    assert code == "INVALID_ARGUMENT"


async def test_a_dataset_version_knows_the_models_trained_on_it(api: Api) -> None:
    nodes = await chain(api)
    data = await api(
        """query { dataset(project: "fraud", name: "clean") { versions { edges { node {
             models { number } runs { name } } } } } }"""
    )
    version = data["dataset"]["versions"]["edges"][0]["node"]
    assert version == {"models": [{"number": 1}], "runs": [{"name": "run-1"}]}
    assert nodes["v1"]["number"] == 1


WALK = """
query($id: ID!, $direction: LineageDirection!, $depth: Int!, $limit: Int!) {
  lineage(id: $id, direction: $direction, depth: $depth, limit: $limit) {
    nodes { ... on DatasetVersion { label } }
    edges { depth upstream { ... on DatasetVersion { label } } downstream { ... on DatasetVersion { label } } }
    partial
    frontier { ... on DatasetVersion { label } }
  }
}
"""


async def dataset_versions(api: Api, *labels: str) -> dict[str, dict[str, Any]]:
    """Versions of one dataset, by label."""
    await factories.project(api)
    dataset = await factories.dataset(api, "raw")
    return {label: await factories.dataset_version(api, dataset["id"], label) for label in labels}


async def derive(api: Api, versions: dict[str, dict[str, Any]], *links: str) -> None:
    """Links written "a>b": b DERIVED_FROM a, in the order given (which orders the edge ids)."""
    for link in links:
        upstream, downstream = link.split(">")
        await api(
            LINK,
            input={
                "kind": "DERIVED_FROM",
                "upstream": versions[upstream]["id"],
                "downstream": versions[downstream]["id"],
            },
        )


async def walk(api: Api, root: dict[str, Any], **arguments: Any) -> dict[str, Any]:
    variables = {"direction": "DOWNSTREAM", "depth": 10, "limit": 500, **arguments}
    data: dict[str, Any] = (await api(WALK, id=root["id"], **variables))["lineage"]
    return data


def labels(nodes: list[dict[str, Any]]) -> list[str]:
    return [node["label"] for node in nodes]


def hops(data: dict[str, Any]) -> list[tuple[str, str, int]]:
    return sorted(
        (e["upstream"]["label"], e["downstream"]["label"], e["depth"]) for e in data["edges"]
    )


def row_id(node: dict[str, Any]) -> int:
    return int(relay.GlobalID.from_id(node["id"]).node_id)


def edge_reads(counter: StatementCounter) -> list[str]:
    return [s for s in counter.statements if "FROM lineage_edges" in s]


async def test_a_link_that_closes_a_two_cycle_is_refused(api: Api) -> None:
    nodes = await chain(api)
    v1, v2 = row_id(nodes["v1"]), row_id(nodes["v2"])
    code, message = await api.error(
        LINK,
        input={
            "kind": "DERIVED_FROM",
            "upstream": nodes["v2"]["id"],
            "downstream": nodes["v1"]["id"],
        },
    )
    assert code == "FAILED_PRECONDITION"
    assert message.endswith(f"would close a cycle: ModelVersion {v1} → {v2} → {v1}")
    data = (await api(LINEAGE, id=nodes["v1"]["id"], direction="UPSTREAM", depth=1))["lineage"]
    assert sorted(e["kind"] for e in data["edges"]) == ["PRODUCED", "TRAINED_ON"]


async def test_a_link_that_closes_a_longer_cycle_is_refused_with_its_path(api: Api) -> None:
    versions = await dataset_versions(api, "a", "b", "c", "d", "e")
    await derive(api, versions, "a>b", "b>c", "c>d", "a>e")
    code, message = await api.error(
        LINK,
        input={
            "kind": "DERIVED_FROM",
            "upstream": versions["d"]["id"],
            "downstream": versions["a"]["id"],
        },
    )
    assert code == "FAILED_PRECONDITION"
    path = " → ".join(str(row_id(versions[label])) for label in "abcda")
    assert message.endswith(f"would close a cycle: DatasetVersion {path}")


async def test_the_cycle_in_a_refusal_is_named_in_bounded_length(api: Api) -> None:
    names = [f"v{i}" for i in range(30)]
    versions = await dataset_versions(api, *names)
    await derive(api, versions, *(f"{a}>{b}" for a, b in pairwise(names)))
    code, message = await api.error(
        LINK,
        input={
            "kind": "DERIVED_FROM",
            "upstream": versions["v29"]["id"],
            "downstream": versions["v0"]["id"],
        },
    )
    assert code == "FAILED_PRECONDITION"
    ids = [str(row_id(versions[name])) for name in [*names, "v0"]]
    shown = " → ".join([*ids[:4], "… 23 more …", *ids[-4:]])
    assert message.endswith(f"would close a cycle: DatasetVersion {shown}")
    assert len(message) < 200


async def test_two_concurrent_links_that_close_a_cycle_do_not_both_pass(api: Api) -> None:
    versions = await dataset_versions(api, "a", "b")
    a, b = ("DatasetVersion", row_id(versions["a"])), ("DatasetVersion", row_id(versions["b"]))
    linked, release = asyncio.Event(), asyncio.Event()

    async def first() -> None:
        async with api.database.unit_of_work(Origin(actor="first")) as uow:
            await add_edge(uow, kind=EdgeKind.DERIVED_FROM, upstream=a, downstream=b)
            linked.set()
            await release.wait()

    async def second() -> None:
        async with api.database.unit_of_work(Origin(actor="second")) as uow:
            await add_edge(uow, kind=EdgeKind.DERIVED_FROM, upstream=b, downstream=a)

    one = asyncio.create_task(first())
    await linked.wait()
    two = asyncio.create_task(second())
    try:
        await asyncio.sleep(0.3)
        waited = not two.done()
    finally:
        # Commit the first link whatever happens, or its open transaction blocks the next test.
        release.set()
        await one
    with pytest.raises(CatalogError) as refused:
        await two
    assert refused.value.code == "FAILED_PRECONDITION"
    assert waited, "the second link looked for a cycle before the first committed"


async def test_a_diamond_is_walked_once(api: Api) -> None:
    versions = await dataset_versions(api, "r", "a", "b", "c", "d")
    await derive(api, versions, "r>a", "r>b", "a>c", "b>c", "c>d")
    counter = api.count_statements()
    data = await walk(api, versions["r"])
    assert labels(data["nodes"]) == ["a", "b", "c", "d"]
    assert hops(data) == [("a", "c", 2), ("b", "c", 2), ("c", "d", 3), ("r", "a", 1), ("r", "b", 1)]
    assert (data["partial"], data["frontier"]) == (False, [])
    # One read per hop: {r}, {a, b}, {c}, {d}; c is expanded once though two edges reach it.
    assert len(edge_reads(counter)) == 4


async def test_past_the_node_limit_the_walk_is_partial_and_names_its_frontier(api: Api) -> None:
    versions = await dataset_versions(api, "r", "a", "b", "a2", "a3", "b2")
    await derive(api, versions, "r>a", "r>b", "a>a2", "a>a3", "b>b2")
    data = await walk(api, versions["r"], limit=3)
    assert data["partial"] is True
    assert labels(data["nodes"]) == ["a", "b", "a2"]
    assert hops(data) == [("a", "a2", 2), ("r", "a", 1), ("r", "b", 1)]
    # a and b lost an edge to the limit; a2 was reached but not expanded.
    assert labels(data["frontier"]) == ["a", "b", "a2"]


async def test_a_walk_that_just_fits_the_limit_is_not_partial(api: Api) -> None:
    versions = await dataset_versions(api, "r", "a", "b", "a2", "a3", "b2")
    await derive(api, versions, "r>a", "r>b", "a>a2", "a>a3", "b>b2")
    data = await walk(api, versions["r"], limit=5)
    assert (data["partial"], data["frontier"]) == (False, [])
    assert labels(data["nodes"]) == ["a", "b", "a2", "a3", "b2"]


async def test_lineage_limit_out_of_range_is_invalid(api: Api) -> None:
    versions = await dataset_versions(api, "r")
    for limit in (0, 501):
        code, _ = await api.error(
            WALK, id=versions["r"]["id"], direction="BOTH", depth=2, limit=limit
        )
        assert code == "INVALID_ARGUMENT"


async def test_the_statements_of_a_walk_do_not_grow_with_its_nodes(api: Api) -> None:
    names = ["small", "big"] + [f"s{i}" for i in range(2)] + [f"b{i}" for i in range(8)]
    versions = await dataset_versions(api, *names)
    for root, children in (("small", 2), ("big", 8)):
        for i in range(children):
            child = f"{root[0]}{i}"
            await derive(api, versions, f"{root}>{child}")
    counter = api.count_statements()
    assert len((await walk(api, versions["small"]))["nodes"]) == 2
    small = len(counter)
    counter = api.count_statements()
    assert len((await walk(api, versions["big"]))["nodes"]) == 8
    # The root, one read per hop (the children, then their missing edges), the nodes in one batch.
    assert len(counter) == small == 4


async def test_old_data_with_a_cycle_is_walked_once_per_node(api: Api) -> None:
    versions = await dataset_versions(api, "a", "b", "c", "d")
    await derive(api, versions, "a>b", "b>c")
    async with api.database.unit_of_work(Origin(actor="before the rule")) as uow:
        uow.session.add(
            LineageEdgeRow(
                kind="DERIVED_FROM",
                source_type="DatasetVersion",
                source_id=row_id(versions["c"]),
                target_type="DatasetVersion",
                target_id=row_id(versions["a"]),
                created_at=utcnow(),
                created_by="before the rule",
            )
        )
    counter = api.count_statements()
    data = await walk(api, versions["a"], direction="BOTH", depth=20)
    assert labels(data["nodes"]) == ["b", "c"]
    assert hops(data) == [("a", "b", 1), ("b", "c", 2), ("c", "a", 1)]
    # Three hops reach every node both ways; the walk stops there rather than go round to 20.
    assert len(edge_reads(counter)) == 3
    # The cycle rule's own walk (downstream of a, round the cycle) ends too, and finds no d.
    await derive(api, versions, "d>a")


async def test_a_hop_reads_no_more_edges_than_the_limits_can_take(api: Api) -> None:
    versions = await dataset_versions(api, "r", *(f"d{i}" for i in range(8)))
    await derive(api, versions, *(f"r>d{i}" for i in range(8)))
    counter = api.count_statements()
    data = await walk(api, versions["r"], limit=3)
    assert data["partial"] is True
    assert labels(data["nodes"]) == ["d0", "d1", "d2"]
    assert labels(data["frontier"]) == ["r", "d0", "d1", "d2"]
    [read] = edge_reads(counter)
    # The hop asks for at most the nodes and edges it can still keep, plus one: a hub with
    # 100,000 edges costs a bounded read.
    assert "LIMIT" in read.upper()


async def test_past_its_edge_limit_the_walk_is_partial(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    versions = await dataset_versions(api, "r", "a", "b", "c")
    await derive(api, versions, "r>a", "r>b", "a>c", "b>c")
    monkeypatch.setitem(limits.LIMITS, "Lineage.edges", limits.Limit(items=3))
    data = await walk(api, versions["r"])
    assert data["partial"] is True
    assert len(hops(data)) == 3
    assert labels(data["frontier"]) == ["b", "c"]  # b lost an edge; c was not expanded
