"""Every action the catalog (and auth/tokens, auth/sessions) writes, read back from each
database, has its declared shape."""

from typing import Any

import pytest
from sqlalchemy import select

from mlcatalog.auth import tokens
from mlcatalog.auth.principal import Method, Principal
from mlcatalog.auth.sessions import Sessions
from mlcatalog.catalog import (
    approvals,
    datasets,
    deployments,
    documents,
    experiments,
    gates,
    lineage,
    models,
    projects,
    versions,
    webhooks,
)
from mlcatalog.catalog.experiments import RunMetric, RunStatus
from mlcatalog.catalog.gates import GateKind
from mlcatalog.catalog.journal import record, record_denied, record_policy
from mlcatalog.catalog.versions import MetricValue, Stage
from mlcatalog.store import journal
from mlcatalog.store.database import Database, Origin
from mlcatalog.store.journal import Action, EdgeKind, EntityType, ShapeError
from mlcatalog.store.rows import JournalRow


async def every_action(database: Database) -> None:
    """A catalog's life that writes each action at least once."""
    async with database.unit_of_work(Origin(actor="auditor")) as uow:
        project = await projects.create_project(uow, name="fraud", description="the fraud team")
        model = await models.register_model(
            uow, project_id=project.id, name="detector", tags={"team": "risk"}
        )
        await models.update_model(uow, model_id=model.id, changes={"task": "ranking"})
        await models.set_archived(uow, model_id=model.id, archived=True)
        await models.set_archived(uow, model_id=model.id, archived=False)
        dataset = await datasets.create_dataset(uow, project_id=project.id, name="transactions")
        data = await datasets.create_dataset_version(
            uow, dataset_id=dataset.id, label="v1", uri="s3://data/v1", digest="abc"
        )
        experiment = await experiments.create_experiment(uow, project_id=project.id, name="tuning")
        run = await experiments.create_run(
            uow,
            experiment_id=experiment.id,
            name="run-1",
            params={"lr": "0.1"},
            input_dataset_version_ids=[data.id],
        )
        await experiments.log_run_metrics(
            uow, run_id=run.id, metrics=[RunMetric("loss", 0.5, step=1)]
        )
        await experiments.finish_run(uow, run_id=run.id, status=RunStatus.FINISHED)
        first = await versions.create_model_version(
            uow,
            model_id=model.id,
            semver="1.0.0",
            metrics=[MetricValue("auc", 1.0, dataset="holdout")],
            source_run_id=run.id,
            training_dataset_version_ids=[data.id],
        )
        second = await versions.create_model_version(uow, model_id=model.id)
        await lineage.add_edge(
            uow,
            kind=EdgeKind.DERIVED_FROM,
            upstream=(EntityType.MODEL_VERSION, first.id),
            downstream=(EntityType.MODEL_VERSION, second.id),
        )
        await versions.update_model_version(
            uow, version_id=first.id, changes={"framework": "xgboost", "hyperparameters": {"n": 3}}
        )
        await versions.log_metrics(uow, version_id=first.id, metrics=[MetricValue("f1", 0.7)])
        for version in (first, second):
            for stage in (Stage.DEVELOPMENT, Stage.STAGING, Stage.PRODUCTION):
                await versions.set_stage(uow, version_id=version.id, stage=stage, approval_id=7)
        await versions.rollback_production(uow, model_id=model.id)
        deployment = await deployments.record_deployment(
            uow,
            version_id=first.id,
            environment="production",
            endpoint_url="https://fraud.example.com/v1/score",
            traffic_share=0.9,
        )
        await deployments.update_deployment(
            uow, deployment_id=deployment.id, changes={"traffic_share": 1.0}
        )
        await deployments.remove_deployment(uow, deployment_id=deployment.id)
        await versions.set_alias(uow, version_id=first.id, alias="champion")
        await versions.set_alias(uow, version_id=second.id, alias="champion")
        await versions.remove_alias(uow, model_id=model.id, alias="champion")
        for entity_type, entity_id in (
            (EntityType.MODEL, model.id),
            (EntityType.MODEL_VERSION, first.id),
            (EntityType.DATASET, dataset.id),
        ):
            await models.set_tags(
                uow, entity_type=entity_type, entity_id=entity_id, tags={"pii": "false"}
            )
            await models.set_tags(
                uow, entity_type=entity_type, entity_id=entity_id, tags={"pii": "true"}
            )
            await models.remove_tags(
                uow, entity_type=entity_type, entity_id=entity_id, keys=["pii"]
            )
            await documents.upsert_document(
                uow, subject_type=entity_type, subject_id=entity_id, content={"markdown": "# A"}
            )
            await documents.upsert_document(
                uow, subject_type=entity_type, subject_id=entity_id, content={"factors": "age"}
            )
        await versions.add_comment(uow, version_id=first.id, body="looks good")
        # Approvals: settings, a gate added and removed, a request of each ending.
        await projects.update_project_settings(
            uow, project_id=project.id, require_approval=[Stage.STAGING], four_eyes=True
        )
        gate = await gates.add_gate(
            uow,
            project_id=project.id,
            stage=Stage.STAGING,
            kind=GateKind.METRIC_THRESHOLD,
            parameters={"metric": "auc", "dataset": "holdout", "operator": ">=", "value": 0.5},
        )
        await gates.remove_gate(uow, gate_id=gate.id)
        for ending in (
            approvals.reject_transition,
            approvals.cancel_transition,
        ):
            request = await approvals.request_transition(  # a restore: second is ARCHIVED
                uow, version_id=second.id, stage=Stage.DEVELOPMENT, comment="ready"
            )
            await ending(uow, request_id=request.id, comment="no")
    # Four eyes: the reviewer approves the auditor's request; the stage change names it.
    requested = await _requested(database, model.id)
    async with database.unit_of_work(Origin(actor="reviewer")) as uow:
        await approvals.approve_transition(uow, request_id=requested, comment="ok")
    async with database.unit_of_work(Origin(actor="auditor")) as uow:
        await versions.delete_model_version(uow, version_id=first.id)
        await models.delete_model(uow, model_id=model.id)
        hook = await webhooks.create_webhook(
            uow,
            project_id=project.id,
            url="https://hooks.example.org/in",
            actions=["model.registered"],
        )
        hook_id = hook.webhook.id
        await webhooks.update_webhook(uow, webhook_id=hook_id, secret="s" * 32, enabled=False)
        await webhooks.request_ping(uow, webhook_id=hook_id)
        # The delivery worker disables a hook after its run of failures.
        disabled = journal.WebhookDisabled(failures=10, last_error="HTTP 500", seq=1)
        record(uow, Action.WEBHOOK_DISABLED, hook_id, project_id=project.id, after=disabled)
        await webhooks.delete_webhook(uow, webhook_id=hook_id)
    # API tokens are journaled by auth/tokens, each in a unit of work of its own.
    await tokens.create(
        database,
        origin=Origin(actor="admin"),
        name="ci",
        project="fraud",
        role="contributor",
        days=1,
        max_days=1,
    )
    await tokens.revoke(database, origin=Origin(actor="admin"), name="ci")
    # So are browser sessions, by auth/sessions.
    sessions = Sessions(database, hours=1)
    started = await sessions.start(Principal(subject="alice", method=Method.SESSION))
    await sessions.end(started.cookie)
    # What the access policy writes: a refused write, a reloaded policy.
    await record_denied(
        database,
        Origin(actor="viewer"),
        mutation="Mutation.registerModel",
        project_id=1,
        reason="no",
    )
    await record_policy(database, Origin(actor="policy"), sha256="0" * 64, lines=3)


async def _requested(database: Database, model_id: int) -> int:
    """A pending request, made by the auditor, for the reviewer to approve (four eyes)."""
    async with database.unit_of_work(Origin(actor="auditor")) as uow:
        version = await versions.create_model_version(
            uow, model_id=model_id, stage=Stage.DEVELOPMENT
        )
        request = await approvals.request_transition(
            uow, version_id=version.id, stage=Stage.STAGING
        )
        return request.id


@pytest.fixture
async def entries(database: Database) -> list[JournalRow]:
    await every_action(database)
    async with database.read() as session:
        return list(await session.scalars(select(JournalRow).order_by(JournalRow.seq)))


async def test_every_action_is_written_by_the_catalog(entries: list[JournalRow]) -> None:
    assert {entry.action for entry in entries} == set(Action)


async def test_every_entry_read_back_has_its_actions_declared_shape(
    entries: list[JournalRow],
) -> None:
    for entry in entries:
        journal.check(entry.action, entry.entity_type, entry.changes)


async def test_record_refuses_an_entry_that_is_not_its_actions_shape(database: Database) -> None:
    wrong: list[dict[str, Any]] = [
        {"after": {"name": "fraud"}},  # description missing
        {"after": {"name": "fraud", "description": "", "owner": "me"}},  # owner undeclared
        {"before": {"name": "fraud"}, "after": {"name": "fraud", "description": ""}},
    ]
    async with database.unit_of_work(Origin(actor="auditor")) as uow:
        for changes in wrong:
            with pytest.raises(ShapeError):
                record(uow, Action.PROJECT_CREATED, 1, project_id=1, **changes)
        with pytest.raises(ShapeError, match="several entity types"):
            record(uow, Action.TAGS_SET, 1, project_id=1, before={"tags": {}}, after={"tags": {}})
        assert uow.journal == []
