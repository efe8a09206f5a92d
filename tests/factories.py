"""Builders: the shortest GraphQL calls that make a catalog for a test."""

from typing import Any

from tests.conftest import Api

PROJECT = "mutation($name: String!) { createProject(input: {name: $name}) { project { id name } } }"
REGISTER = """
mutation($input: RegisterModelInput!) { registerModel(input: $input) { model { id name owner } } }
"""
CREATE_VERSION = """
mutation($input: CreateModelVersionInput!) {
  createModelVersion(input: $input) { modelVersion { id number version stage } }
}
"""
CREATE_DATASET = """
mutation($input: CreateDatasetInput!) { createDataset(input: $input) { dataset { id name } } }
"""
CREATE_DATASET_VERSION = """
mutation($input: CreateDatasetVersionInput!) {
  createDatasetVersion(input: $input) { datasetVersion { id label } }
}
"""
CREATE_EXPERIMENT = """
mutation($input: CreateExperimentInput!) { createExperiment(input: $input) { experiment { id } } }
"""
CREATE_RUN = "mutation($input: CreateRunInput!) { createRun(input: $input) { run { id name } } }"


async def project(api: Api, name: str = "fraud") -> dict[str, Any]:
    data = await api(PROJECT, name=name)
    return dict(data["createProject"]["project"])


async def model(
    api: Api, name: str = "fraud-detector", project: str = "fraud", **fields: Any
) -> dict[str, Any]:
    data = await api(REGISTER, input={"project": project, "name": name, **fields})
    return dict(data["registerModel"]["model"])


async def version(api: Api, model_id: str, **fields: Any) -> dict[str, Any]:
    data = await api(CREATE_VERSION, input={"model": model_id, **fields})
    return dict(data["createModelVersion"]["modelVersion"])


async def dataset(
    api: Api, name: str = "transactions", project: str = "fraud", **fields: Any
) -> dict[str, Any]:
    data = await api(CREATE_DATASET, input={"project": project, "name": name, **fields})
    return dict(data["createDataset"]["dataset"])


async def dataset_version(
    api: Api, dataset_id: str, label: str = "v1", **fields: Any
) -> dict[str, Any]:
    data = await api(
        CREATE_DATASET_VERSION,
        input={"dataset": dataset_id, "label": label, "uri": f"s3://data/{label}", **fields},
    )
    return dict(data["createDatasetVersion"]["datasetVersion"])


async def run(
    api: Api, experiment: str = "baseline", project: str = "fraud", **fields: Any
) -> dict[str, Any]:
    data = await api(CREATE_EXPERIMENT, input={"project": project, "name": experiment})
    experiment_id = data["createExperiment"]["experiment"]["id"]
    data = await api(CREATE_RUN, input={"experiment": experiment_id, "name": "run-1", **fields})
    return dict(data["createRun"]["run"])


async def catalog(api: Api) -> dict[str, Any]:
    """A project with one model and one version: the smallest useful catalog."""
    await project(api)
    m = await model(api)
    v = await version(api, m["id"])
    return {"model": m, "version": v}
