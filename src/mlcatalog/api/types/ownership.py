"""The project each entity object belongs to, for the authorizer (api/authorize.py): read through
the request's loaders, so a page of versions costs one batch of models and one of projects."""

from typing import Any

from mlcatalog.api.authorize import NO_PROJECT, NoProject
from mlcatalog.api.context import Info
from mlcatalog.api.pagination import Connection
from mlcatalog.api.types.approvals import QualityGate, StageTransitionRequest
from mlcatalog.api.types.audit import JournalEntry
from mlcatalog.api.types.common import RowNode
from mlcatalog.api.types.datasets import Dataset, DatasetVersion
from mlcatalog.api.types.documents import Document
from mlcatalog.api.types.events import CatalogEvent
from mlcatalog.api.types.experiments import Experiment, Run
from mlcatalog.api.types.lifecycle import Deployment
from mlcatalog.api.types.models import Model
from mlcatalog.api.types.projects import Project
from mlcatalog.api.types.versions import Comment, ModelVersion
from mlcatalog.api.types.webhooks import Webhook
from mlcatalog.catalog.errors import CatalogError, ErrorCode
from mlcatalog.store.rows import (
    DatasetRow,
    ExperimentRow,
    ModelRow,
    ModelVersionRow,
    ProjectRow,
)
from mlcatalog.store.visibility import Visible


async def _project_id(source: Any, info: Info) -> int | NoProject | None:
    rows = info.context.loaders
    if isinstance(
        source,
        Model
        | Dataset
        | Experiment
        | Document
        | JournalEntry
        | StageTransitionRequest
        | QualityGate
        | CatalogEvent
        | Webhook,
    ):
        return source.project_id
    if isinstance(source, ModelVersion):
        model = await rows.row(ModelRow, source.row.model_id)
        return None if model is None else model.project_id
    if isinstance(source, Deployment):
        model = await rows.row(ModelRow, source.model_id)
        return None if model is None else model.project_id
    if isinstance(source, Comment):
        version = await rows.row(ModelVersionRow, source.version_id)
        model = None if version is None else await rows.row(ModelRow, version.model_id)
        return None if model is None else model.project_id
    if isinstance(source, DatasetVersion):
        dataset = await rows.row(DatasetRow, source.dataset_id)
        return None if dataset is None else dataset.project_id
    if isinstance(source, Run):
        experiment = await rows.row(ExperimentRow, source.row.experiment_id)
        return None if experiment is None else experiment.project_id
    return NO_PROJECT


async def project_of(source: Any, info: Info) -> str | NoProject | None:
    """The name of the project ``source`` belongs to; None for an entity of no project (a
    journal entry about an API token); NO_PROJECT for an object that is no entity."""
    if isinstance(source, Project):
        return source.name
    project_id = await _project_id(source, info)
    if isinstance(project_id, NoProject) or project_id is None:
        return project_id
    names = info.context.gate.project_names
    name = names.get(project_id)
    if name is None:
        project = await info.context.loaders.row(ProjectRow, project_id)
        name = names[project_id] = None if project is None else project.name
    return name


def is_entity(value: Any) -> bool:
    return isinstance(value, RowNode)


async def visible_only(result: Any, info: Info, visible: Visible, nullable: bool) -> Any:
    """``result`` without the entities of projects the caller does not see: one such entity is
    answered as if it did not exist."""
    if isinstance(result, Connection):
        shown = [e for e in result.edges if await _shows(e.node, info, visible)]
        if len(shown) != len(result.edges):
            result.edges = shown
        return result
    if isinstance(result, list):
        return [item for item in result if await _shows(item, info, visible)]
    if result is None or await _shows(result, info, visible):
        return result
    if nullable:
        return None
    raise CatalogError(ErrorCode.NOT_FOUND, "no such object")


async def _shows(item: Any, info: Info, visible: Visible) -> bool:
    if not isinstance(item, RowNode):
        return True
    project = await project_of(item, info)
    return isinstance(project, NoProject) or visible.shows(project)
