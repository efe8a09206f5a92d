"""Lineage: implicit edges from versions and runs, linkLineage, the cycle rule and the walk."""

import asyncio
from itertools import pairwise
from typing import Any

import pytest
from strawberry import relay

from mlcatalog.catalog.errors import CatalogError
from mlcatalog.catalog.lineage import EdgeKind, add_edge
from tests import factories
from tests.conftest import Api

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


async def test_the_walk_is_one_statement_whatever_the_depth(api: Api) -> None:
    nodes = await chain(api)
    shallow = api.count_statements()
    await api(LINEAGE, id=nodes["v2"]["id"], direction="BOTH", depth=1)
    deep = api.count_statements()
    await api(LINEAGE, id=nodes["v2"]["id"], direction="BOTH", depth=10)
    walks = [s for s in deep.statements if "RECURSIVE" in s]
    assert len(walks) == 1
    # Hydrating the nodes is batched per type, so depth adds no statements beyond those.
    assert len(deep) <= len(shallow) + 2


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


def row_id(node: dict[str, Any]) -> int:
    return int(relay.GlobalID.from_id(node["id"]).node_id)


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
        async with api.database.unit_of_work("first") as uow:
            await add_edge(uow, kind=EdgeKind.DERIVED_FROM, upstream=a, downstream=b)
            linked.set()
            await release.wait()

    async def second() -> None:
        async with api.database.unit_of_work("second") as uow:
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
