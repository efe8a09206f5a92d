"""Datasets, experiments and runs: creation, metrics with steps, finishing, failures."""

from tests import factories
from tests.conftest import Api

RUN = """
query($id: ID!) { run(id: $id) {
  name status endedAt params { name value } compute { hardware accelerator durationSeconds }
  pipeline { name runId parameters } inputs { label }
  metrics(name: "loss") { totalCount edges { node { value step } } }
} }
"""
LOG = "mutation($input: LogMetricsInput!) { logMetrics(input: $input) { run { name } } }"
FINISH = "mutation($input: FinishRunInput!) { finishRun(input: $input) { run { status } } }"


async def test_a_run_records_params_compute_pipeline_inputs_and_step_history(api: Api) -> None:
    await factories.project(api)
    data_version = await factories.dataset_version(api, (await factories.dataset(api))["id"])
    run = await factories.run(
        api,
        params=[{"name": "lr", "value": "0.1"}],
        hardware="8 vCPU",
        accelerator="A100",
        pipeline={"name": "nightly", "runId": "42", "parameters": {"retries": 2}},
        inputs=[data_version["id"]],
        startedAt="2026-11-01T10:00:00+00:00",
    )
    metrics = [{"name": "loss", "value": v, "step": s} for s, v in enumerate([0.9, 0.5, 0.3])]
    await api(LOG, input={"id": run["id"], "metrics": metrics})
    await api(FINISH, input={"id": run["id"], "endedAt": "2026-11-01T11:30:00+00:00"})
    data = (await api(RUN, id=run["id"]))["run"]
    assert data["status"] == "FINISHED"
    assert data["params"] == [{"name": "lr", "value": "0.1"}]
    assert data["compute"] == {
        "hardware": "8 vCPU",
        "accelerator": "A100",
        "durationSeconds": 5400.0,
    }
    assert data["pipeline"] == {"name": "nightly", "runId": "42", "parameters": {"retries": 2}}
    assert data["inputs"] == [{"label": "v1"}]
    assert data["metrics"]["totalCount"] == 3
    assert [e["node"]["step"] for e in data["metrics"]["edges"]] == [0, 1, 2]


async def test_a_run_finishes_once(api: Api) -> None:
    await factories.project(api)
    run = await factories.run(api)
    await api(FINISH, input={"id": run["id"], "status": "FAILED"})
    code, _ = await api.error(FINISH, input={"id": run["id"]})
    assert code == "FAILED_PRECONDITION"


async def test_a_run_cannot_end_before_it_started(api: Api) -> None:
    await factories.project(api)
    run = await factories.run(api, startedAt="2026-11-01T10:00:00+00:00")
    code, _ = await api.error(
        FINISH, input={"id": run["id"], "endedAt": "2026-10-01T10:00:00+00:00"}
    )
    assert code == "INVALID_ARGUMENT"


async def test_duplicate_experiment_and_dataset_names_are_already_exists(api: Api) -> None:
    await factories.project(api)
    await factories.run(api)
    code, _ = await api.error(
        factories.CREATE_EXPERIMENT, input={"project": "fraud", "name": "baseline"}
    )
    assert code == "ALREADY_EXISTS"
    dataset = await factories.dataset(api)
    code, _ = await api.error(
        factories.CREATE_DATASET, input={"project": "fraud", "name": "transactions"}
    )
    assert code == "ALREADY_EXISTS"
    await factories.dataset_version(api, dataset["id"], "v1")
    code, _ = await api.error(
        factories.CREATE_DATASET_VERSION,
        input={"dataset": dataset["id"], "label": "v1", "uri": "s3://x"},
    )
    assert code == "ALREADY_EXISTS"


async def test_dataset_version_sizes_must_be_whole_and_non_negative(api: Api) -> None:
    await factories.project(api)
    dataset = await factories.dataset(api)
    for fields in ({"sizeBytes": 1.5}, {"rowCount": -1}, {"schema": [1]}, {"uri": " "}):
        code, _ = await api.error(
            factories.CREATE_DATASET_VERSION,
            input={"dataset": dataset["id"], "label": "v9", "uri": "s3://x", **fields},
        )
        assert code == "INVALID_ARGUMENT", fields


async def test_datasets_list_and_filter(api: Api) -> None:
    await factories.project(api)
    await factories.dataset(api, "a", tags=[{"key": "pii", "value": "true"}])
    await factories.dataset(api, "b")
    data = await api(
        'query { datasets(filter: {tag: {key: "pii", value: "true"}}) { totalCount edges { node { name } } } }'
    )
    assert data["datasets"] == {"totalCount": 1, "edges": [{"node": {"name": "a"}}]}


async def test_create_run_refuses_unknown_experiments_and_wrong_inputs(api: Api) -> None:
    await factories.project(api)
    run = await factories.run(api)
    code, _ = await api.error(factories.CREATE_RUN, input={"experiment": run["id"], "name": "r"})
    assert code == "INVALID_ARGUMENT"  # the id of a Run where an Experiment is expected
    experiment = await api(
        factories.CREATE_EXPERIMENT, input={"project": "fraud", "name": "second"}
    )
    experiment_id = experiment["createExperiment"]["experiment"]["id"]
    code, _ = await api.error(
        factories.CREATE_RUN,
        input={"experiment": experiment_id, "name": "r", "inputs": [experiment_id]},
    )
    assert code == "INVALID_ARGUMENT"
    code, _ = await api.error(
        "mutation($input: RemoveTagsInput!) { removeTags(input: $input) { node { id } } }",
        input={"id": run["id"], "keys": ["a"]},
    )
    assert code == "INVALID_ARGUMENT"


async def test_a_run_metric_on_a_dataset_is_refused_not_silently_dropped(api: Api) -> None:
    await factories.project(api)
    run = await factories.run(api)
    metric = {"name": "auc", "value": 0.9, "dataset": "holdout"}
    code, message = await api.error(LOG, input={"id": run["id"], "metrics": [metric]})
    assert code == "INVALID_ARGUMENT"
    assert "dataset" in message
    data = await api("query($id: ID!) { run(id: $id) { metrics { totalCount } } }", id=run["id"])
    assert data["run"]["metrics"]["totalCount"] == 0
