"""The journal's vocabulary: entity types, actions and the payload each action writes.

The journal is the outbox, the audit log and the source of subscriptions: its writer
(store/entries.record, used by catalog/, auth/tokens and auth/sessions) and its readers (the
search indexer, the audit API) share these definitions instead of strings. An entry holds
``{"before": …, "after": …}``; each action declares the shape of both (TypedDicts of JSON
values), and ``check`` refuses an entry that does not match (record calls it before anything is
written). Timestamps are ISO 8601 strings; sets of ids are ``IdRuns``, so that a delete that
takes 10,000 versions with it stays small.
"""

import types
from collections.abc import Callable, Iterable, Mapping
from enum import Enum, StrEnum
from functools import cache
from typing import (
    Any,
    Literal,
    NamedTuple,
    Protocol,
    TypedDict,
    TypeVar,
    Union,
    cast,
    get_args,
    get_origin,
    get_type_hints,
    is_typeddict,
)


class EntityType(StrEnum):
    """What an entry is about; also the subject types of cards and the ends of lineage edges."""

    PROJECT = "Project"
    MODEL = "Model"
    MODEL_VERSION = "ModelVersion"
    DATASET = "Dataset"
    DATASET_VERSION = "DatasetVersion"
    EXPERIMENT = "Experiment"
    RUN = "Run"
    LINEAGE_EDGE = "LineageEdge"
    API_TOKEN = "ApiToken"
    POLICY = "Policy"  # the access policy (policies/): one, entity id 1
    SESSION = "Session"
    DEPLOYMENT = "Deployment"
    STAGE_TRANSITION_REQUEST = "StageTransitionRequest"
    QUALITY_GATE = "QualityGate"
    WEBHOOK = "Webhook"


class Action(StrEnum):
    """What happened, as ``entity.past_tense_verb``."""

    PROJECT_CREATED = "project.created"
    MODEL_REGISTERED = "model.registered"
    MODEL_UPDATED = "model.updated"
    MODEL_ARCHIVED = "model.archived"
    MODEL_RESTORED = "model.restored"
    MODEL_DELETED = "model.deleted"
    MODEL_VERSION_CREATED = "model_version.created"
    MODEL_VERSION_UPDATED = "model_version.updated"
    MODEL_VERSION_METRICS_LOGGED = "model_version.metrics_logged"
    MODEL_VERSION_STAGE_CHANGED = "model_version.stage_changed"
    MODEL_VERSION_DELETED = "model_version.deleted"
    ALIAS_SET = "alias.set"
    ALIAS_MOVED = "alias.moved"
    ALIAS_REMOVED = "alias.removed"
    TAGS_SET = "tags.set"
    TAGS_REMOVED = "tags.removed"
    COMMENT_ADDED = "comment.added"
    DATASET_CREATED = "dataset.created"
    DATASET_VERSION_CREATED = "dataset_version.created"
    EXPERIMENT_CREATED = "experiment.created"
    RUN_CREATED = "run.created"
    RUN_METRICS_LOGGED = "run.metrics_logged"
    RUN_FINISHED = "run.finished"
    LINEAGE_LINKED = "lineage.linked"
    DOCUMENT_CREATED = "document.created"
    DOCUMENT_REVISED = "document.revised"
    API_TOKEN_CREATED = "api_token.created"
    API_TOKEN_REVOKED = "api_token.revoked"
    WRITE_DENIED = "write.denied"  # a mutation the policy refused: nothing else was written
    POLICY_RELOADED = "policy.reloaded"
    SESSION_STARTED = "session.started"
    SESSION_ENDED = "session.ended"
    DEPLOYMENT_RECORDED = "deployment.recorded"
    DEPLOYMENT_UPDATED = "deployment.updated"
    DEPLOYMENT_REMOVED = "deployment.removed"
    PROJECT_SETTINGS_CHANGED = "project.settings_changed"
    QUALITY_GATE_ADDED = "quality_gate.added"
    QUALITY_GATE_REMOVED = "quality_gate.removed"
    STAGE_TRANSITION_REQUESTED = "stage_transition.requested"
    STAGE_TRANSITION_APPROVED = "stage_transition.approved"
    STAGE_TRANSITION_REJECTED = "stage_transition.rejected"
    STAGE_TRANSITION_CANCELLED = "stage_transition.cancelled"
    WEBHOOK_CREATED = "webhook.created"
    WEBHOOK_UPDATED = "webhook.updated"
    WEBHOOK_DELETED = "webhook.deleted"
    WEBHOOK_TESTED = "webhook.tested"  # a ping was asked for (its attempt is a delivery)
    WEBHOOK_DISABLED = "webhook.disabled"  # by the worker, after a run of failed attempts


class EdgeKind(StrEnum):
    """Edges are stored upstream → downstream; the kind reads from one end to the other."""

    USED_BY = "USED_BY"  # dataset version USED_BY run
    PRODUCED = "PRODUCED"  # run PRODUCED model version
    DERIVED_FROM = "DERIVED_FROM"  # downstream DERIVED_FROM upstream (model or dataset versions)
    TRAINED_ON = "TRAINED_ON"  # model version TRAINED_ON dataset version (upstream)
    EVALUATED_ON = "EVALUATED_ON"  # model version EVALUATED_ON dataset version (upstream)


# A set of ids, sorted, each run of consecutive ids written [first, last] and a lone id as itself:
# [3, [7, 9000], 9004] is 3, 7 … 9000 and 9004.
IdRuns = list[int | list[int]]
NodeRef = tuple[EntityType, int]  # a lineage node: [type, id] in JSON
JsonValue = Any  # any JSON value (hyperparameters)


def id_runs(ids: Iterable[int]) -> IdRuns:
    runs: IdRuns = []
    first = last = None
    for i in sorted(set(ids)):
        if last is not None and i == last + 1:
            last = i
            continue
        if first is not None and last is not None:
            runs.append(first if first == last else [first, last])
        first = last = i
    if first is not None and last is not None:
        runs.append(first if first == last else [first, last])
    return runs


def expand_ids(runs: IdRuns) -> list[int]:
    ids: list[int] = []
    for run in runs:
        if isinstance(run, int):
            ids.append(run)
        else:
            ids.extend(range(run[0], run[1] + 1))
    return ids


# ---- payloads, by family ----


class Content(TypedDict):
    """Content too large to copy into the journal: its SHA-256 and size in bytes."""

    sha256: str
    size: int


class Empty(TypedDict):
    """No fields: the before of a creation, the after of a removal."""


class ProjectCreated(TypedDict):
    name: str
    description: str | Content


class ModelRegistered(TypedDict):
    name: str
    owner: str
    task: str | None
    tags: dict[str, str]


class ModelFields(TypedDict, total=False):
    """The fields of a model an update changed (only those); long text by digest."""

    description: str | Content
    owner: str
    task: str | None
    allows_several_in_production: bool


class Archival(TypedDict):
    archived_at: str | None


class IdSet(TypedDict):
    count: int
    ids: IdRuns


class VersionsRemoved(TypedDict):
    count: int
    ids: IdRuns
    numbers: IdRuns
    stages: dict[str, int]  # how many versions were in each stage


class DocumentsRemoved(TypedDict):
    count: int
    ids: IdRuns
    revisions: int


class LineageRemoved(TypedDict):
    """The edges a delete took with it, and the entities at their other ends."""

    count: int
    ids: IdRuns
    upstream: dict[EntityType, IdRuns]  # what fed the deleted entities
    downstream: dict[EntityType, IdRuns]  # what came from them


class ModelDeleted(TypedDict):
    """Everything a model's hard delete took with it: ids and counts, never contents."""

    name: str
    owner: str
    tags: dict[str, str]
    aliases: dict[str, int]  # alias → version id
    versions: VersionsRemoved
    version_tags: int
    metrics: int
    comments: IdSet
    documents: DocumentsRemoved  # the model's card and its versions' cards
    lineage: LineageRemoved


class ModelVersionCreated(TypedDict):
    model_id: int
    number: int
    version: str | None
    stage: str


class ModelVersionFields(TypedDict, total=False):
    """The fields of a version an update changed (only those); large values by digest."""

    description: str | Content
    semver: str | None
    framework: str | None
    framework_version: str | None
    algorithm: str | None
    hyperparameters: dict[str, JsonValue] | Content


class Metric(TypedDict):
    name: str
    value: float
    step: int | None
    dataset: str | None


class MetricsLogged(TypedDict):
    metrics: list[Metric]


class StageFields(TypedDict):
    stage: str


class StageEntered(StageFields, total=False):
    """The after of a stage change; entries written before the lifecycle rules hold the stage
    only."""

    model_id: int
    archived: list[int]  # the versions this move archived (rollbackProduction reads it)
    approval_id: int  # the approved request that carried the move
    rollback: bool  # moved back by rollbackProduction


class ModelVersionDeleted(TypedDict):
    """Everything a version's hard delete took with it: ids and counts, never contents."""

    model_id: int
    number: int
    version: str | None
    stage: str
    tags: dict[str, str]
    aliases: list[str]
    metrics: int
    comments: IdSet
    documents: DocumentsRemoved
    lineage: LineageRemoved


class AliasPointer(TypedDict):
    alias: str
    version_id: int


class DeploymentFields(TypedDict, total=False):
    """A deployment (all of it when recorded or removed; what changed when updated)."""

    version_id: int
    model_id: int
    environment: str
    endpoint: str
    status: str
    traffic_share: float


class Tags(TypedDict):
    tags: dict[str, str]


class CommentAdded(TypedDict):
    comment_id: int
    body: str | Content


class DatasetCreated(TypedDict):
    name: str
    owner: str
    source: str | None
    tags: dict[str, str]


class DatasetVersionCreated(TypedDict):
    dataset_id: int
    label: str
    uri: str
    digest: str | None


class ExperimentCreated(TypedDict):
    name: str
    owner: str


class RunCreated(TypedDict):
    experiment_id: int
    name: str
    param_names: list[str]
    params: Content  # of the parameters as canonical JSON


class RunMetric(TypedDict):
    name: str
    value: float
    step: int | None


class RunMetricsLogged(TypedDict):
    metrics: list[RunMetric]


class StatusFields(TypedDict):
    status: str


class RunFinished(TypedDict):
    status: str
    ended_at: str


class LineageLinked(TypedDict):
    kind: EdgeKind
    upstream: NodeRef
    downstream: NodeRef


class Card(TypedDict):
    """One revision of a card, by digest: the Markdown itself stays in document_revisions."""

    document_id: int
    revision: int
    sha256: str  # of the revision's content as canonical JSON
    size: int  # its length in bytes


class CardRevised(Card):
    revision_id: int
    sections: list[str]  # the sections this edit changed


class ApiToken(TypedDict):
    """A token as the journal knows it: never its secret, nor the secret's hash."""

    name: str
    prefix: str  # mlc_<public id>: what identifies the token in logs and listings
    subject: str  # whom it acts as: token:<name>#<public id>
    project: str
    role: str
    expires_at: str


class Revocation(TypedDict):
    revoked_at: str


class WriteDenied(TypedDict):
    """About the project the write was refused in (entity id 0: refused before any project)."""

    mutation: str  # Mutation.name
    reason: str


class PolicyLoaded(TypedDict):
    sha256: str  # of model.conf and policy.csv, in that order
    lines: int


class BrowserSession(TypedDict):
    """A session as the journal knows it: never the cookie, its secret or the secret's hash."""

    subject: str
    expires_at: str


class ProjectSettings(TypedDict, total=False):
    """The settings an update changed (only those)."""

    require_approval: list[str]  # stages entered only through an approved request
    four_eyes: bool  # the requester may not approve


class QualityGate(TypedDict):
    project_id: int
    stage: str
    kind: str
    parameters: dict[str, JsonValue]


class TransitionRequested(TypedDict):
    version_id: int
    from_stage: str
    to_stage: str
    status: str
    comment: str | Content


class TransitionDecided(TypedDict):
    """A request's decision: its status and the decider's comment (the actor decided)."""

    status: str
    comment: str | Content | None


class Status(TypedDict):
    status: str


class Webhook(TypedDict):
    """A hook as the journal knows it: never its secret."""

    url: str
    actions: list[str]
    stages: list[str]
    model_ids: list[int]
    include_changes: bool
    enabled: bool


class WebhookFields(TypedDict, total=False):
    """What an update changed; ``secret_changed`` says a new secret was set, never which.
    ``include_changes`` is also named, unchanged, when a hook that includes changes gets a new
    URL or secret: redirecting it needs the same permission as making it."""

    url: str
    actions: list[str]
    stages: list[str]
    model_ids: list[int]
    include_changes: bool
    enabled: bool
    secret_changed: bool


class WebhookDisabled(TypedDict):
    failures: int
    last_error: str
    seq: int  # the entry it could not deliver


class Shape(NamedTuple):
    """What an action is about and the shape of its before and after."""

    entity_types: frozenset[EntityType]
    before: Any  # a TypedDict class
    after: Any


def _shape(before: Any, after: Any, *entity_types: EntityType) -> Shape:
    return Shape(frozenset(entity_types), before, after)


_MODEL, _VERSION = EntityType.MODEL, EntityType.MODEL_VERSION
_REQUEST = EntityType.STAGE_TRANSITION_REQUEST
_CARD_SUBJECTS = (EntityType.MODEL, EntityType.MODEL_VERSION, EntityType.DATASET)

SHAPES: dict[Action, Shape] = {
    Action.PROJECT_CREATED: _shape(Empty, ProjectCreated, EntityType.PROJECT),
    Action.MODEL_REGISTERED: _shape(Empty, ModelRegistered, _MODEL),
    Action.MODEL_UPDATED: _shape(ModelFields, ModelFields, _MODEL),
    Action.MODEL_ARCHIVED: _shape(Archival, Archival, _MODEL),
    Action.MODEL_RESTORED: _shape(Archival, Archival, _MODEL),
    Action.MODEL_DELETED: _shape(ModelDeleted, Empty, _MODEL),
    Action.MODEL_VERSION_CREATED: _shape(Empty, ModelVersionCreated, _VERSION),
    Action.MODEL_VERSION_UPDATED: _shape(ModelVersionFields, ModelVersionFields, _VERSION),
    Action.MODEL_VERSION_METRICS_LOGGED: _shape(Empty, MetricsLogged, _VERSION),
    Action.MODEL_VERSION_STAGE_CHANGED: _shape(StageFields, StageEntered, _VERSION),
    Action.MODEL_VERSION_DELETED: _shape(ModelVersionDeleted, Empty, _VERSION),
    Action.ALIAS_SET: _shape(Empty, AliasPointer, _VERSION),
    Action.ALIAS_MOVED: _shape(AliasPointer, AliasPointer, _VERSION),
    Action.ALIAS_REMOVED: _shape(AliasPointer, Empty, _VERSION),
    Action.TAGS_SET: _shape(Tags, Tags, _MODEL, _VERSION, EntityType.DATASET),
    Action.TAGS_REMOVED: _shape(Tags, Empty, _MODEL, _VERSION, EntityType.DATASET),
    Action.COMMENT_ADDED: _shape(Empty, CommentAdded, _VERSION),
    Action.DATASET_CREATED: _shape(Empty, DatasetCreated, EntityType.DATASET),
    Action.DATASET_VERSION_CREATED: _shape(
        Empty, DatasetVersionCreated, EntityType.DATASET_VERSION
    ),
    Action.EXPERIMENT_CREATED: _shape(Empty, ExperimentCreated, EntityType.EXPERIMENT),
    Action.RUN_CREATED: _shape(Empty, RunCreated, EntityType.RUN),
    Action.RUN_METRICS_LOGGED: _shape(Empty, RunMetricsLogged, EntityType.RUN),
    Action.RUN_FINISHED: _shape(StatusFields, RunFinished, EntityType.RUN),
    Action.LINEAGE_LINKED: _shape(Empty, LineageLinked, EntityType.LINEAGE_EDGE),
    Action.DOCUMENT_CREATED: _shape(Empty, CardRevised, *_CARD_SUBJECTS),
    Action.DOCUMENT_REVISED: _shape(Card, CardRevised, *_CARD_SUBJECTS),
    Action.API_TOKEN_CREATED: _shape(Empty, ApiToken, EntityType.API_TOKEN),
    Action.API_TOKEN_REVOKED: _shape(ApiToken, Revocation, EntityType.API_TOKEN),
    Action.WRITE_DENIED: _shape(Empty, WriteDenied, EntityType.PROJECT),
    Action.POLICY_RELOADED: _shape(Empty, PolicyLoaded, EntityType.POLICY),
    Action.SESSION_STARTED: _shape(Empty, BrowserSession, EntityType.SESSION),
    Action.SESSION_ENDED: _shape(BrowserSession, Empty, EntityType.SESSION),
    Action.DEPLOYMENT_RECORDED: _shape(Empty, DeploymentFields, EntityType.DEPLOYMENT),
    Action.DEPLOYMENT_UPDATED: _shape(DeploymentFields, DeploymentFields, EntityType.DEPLOYMENT),
    Action.DEPLOYMENT_REMOVED: _shape(DeploymentFields, Empty, EntityType.DEPLOYMENT),
    Action.PROJECT_SETTINGS_CHANGED: _shape(ProjectSettings, ProjectSettings, EntityType.PROJECT),
    Action.QUALITY_GATE_ADDED: _shape(Empty, QualityGate, EntityType.QUALITY_GATE),
    Action.QUALITY_GATE_REMOVED: _shape(QualityGate, Empty, EntityType.QUALITY_GATE),
    Action.STAGE_TRANSITION_REQUESTED: _shape(Empty, TransitionRequested, _REQUEST),
    Action.STAGE_TRANSITION_APPROVED: _shape(Status, TransitionDecided, _REQUEST),
    Action.STAGE_TRANSITION_REJECTED: _shape(Status, TransitionDecided, _REQUEST),
    Action.STAGE_TRANSITION_CANCELLED: _shape(Status, TransitionDecided, _REQUEST),
    Action.WEBHOOK_CREATED: _shape(Empty, Webhook, EntityType.WEBHOOK),
    Action.WEBHOOK_UPDATED: _shape(WebhookFields, WebhookFields, EntityType.WEBHOOK),
    Action.WEBHOOK_DELETED: _shape(Webhook, Empty, EntityType.WEBHOOK),
    Action.WEBHOOK_TESTED: _shape(Empty, Empty, EntityType.WEBHOOK),
    Action.WEBHOOK_DISABLED: _shape(Empty, WebhookDisabled, EntityType.WEBHOOK),
}


# The action that makes each kind of entity: its creator is the actor of that entry.
CREATIONS: dict[EntityType, Action] = {
    EntityType.PROJECT: Action.PROJECT_CREATED,
    EntityType.MODEL: Action.MODEL_REGISTERED,
    EntityType.MODEL_VERSION: Action.MODEL_VERSION_CREATED,
    EntityType.DATASET: Action.DATASET_CREATED,
    EntityType.DATASET_VERSION: Action.DATASET_VERSION_CREATED,
    EntityType.EXPERIMENT: Action.EXPERIMENT_CREATED,
    EntityType.RUN: Action.RUN_CREATED,
    EntityType.LINEAGE_EDGE: Action.LINEAGE_LINKED,
    EntityType.API_TOKEN: Action.API_TOKEN_CREATED,
    EntityType.SESSION: Action.SESSION_STARTED,
    EntityType.DEPLOYMENT: Action.DEPLOYMENT_RECORDED,
    EntityType.STAGE_TRANSITION_REQUEST: Action.STAGE_TRANSITION_REQUESTED,
    EntityType.QUALITY_GATE: Action.QUALITY_GATE_ADDED,
    EntityType.WEBHOOK: Action.WEBHOOK_CREATED,
}


class ShapeError(ValueError):
    """An entry that does not match its action's declared shape."""


class Changes(TypedDict):
    """What an entry holds: ``before`` and ``after`` as its action's shape declares them."""

    before: dict[str, Any]
    after: dict[str, Any]


class Entry(Protocol):
    """A journal entry as readers see it (JournalRow is one)."""

    @property
    def action(self) -> str: ...
    @property
    def changes(self) -> Mapping[str, Any]: ...


def changes(entry: Entry) -> Changes:
    """The entry's before and after, whatever its action, in today's shapes."""
    stored = entry.changes
    found = Changes(before=dict(stored.get("before", {})), after=dict(stored.get("after", {})))
    known = entry.action in Action.__members__.values()
    for side in ("before", "after"):
        upgrade = _UPGRADES.get((Action(entry.action), side)) if known else None
        if upgrade is not None and upgrade[0] not in found[side]:
            found[side] = upgrade[1](found[side])
    return found


def check(action: str, entity_type: str, changes: Mapping[str, object]) -> None:
    """Raise ShapeError unless ``changes`` is what ``action`` on ``entity_type`` writes."""
    try:
        shape = SHAPES[Action(action)]
    except ValueError:
        raise ShapeError(f"{action!r} is not a journal action") from None
    if entity_type not in shape.entity_types:
        raise ShapeError(f"{action} is not about a {entity_type}")
    if set(changes) != {"before", "after"}:
        raise ShapeError(f"{action}: changes hold {sorted(changes)}, not before and after")
    _check(shape.before, changes["before"], f"{action} before")
    _check(shape.after, changes["after"], f"{action} after")


P = TypeVar("P")


def before(entry: Entry, shape: type[P]) -> P:
    """The entry's before, read as ``shape``: the one its action declares, or ShapeError."""
    return _read(entry, "before", shape)


def after(entry: Entry, shape: type[P]) -> P:
    """The entry's after, read as ``shape``: the one its action declares, or ShapeError."""
    return _read(entry, "after", shape)


def _read(entry: Entry, side: Literal["before", "after"], shape: type[P]) -> P:
    action = Action(entry.action)
    declared = getattr(SHAPES[action], side)
    if declared is not shape:
        raise ShapeError(f"{action} {side} is a {declared.__name__}, not {shape.__name__}")
    return cast(P, changes(entry)[side])


# Entries written before a shape changed stay as they were (the journal is append-only); readers
# get them in today's shape, with what the old shape did not record left empty.
def _no_lineage() -> LineageRemoved:
    return LineageRemoved(count=0, ids=[], upstream={}, downstream={})


def _no_documents() -> DocumentsRemoved:
    return DocumentsRemoved(count=0, ids=[], revisions=0)


def _model_deleted_v1(old: dict[str, Any]) -> ModelDeleted:
    """{name, version_ids} → ModelDeleted."""
    ids = old["version_ids"]
    return ModelDeleted(
        name=old["name"],
        owner="",
        tags={},
        aliases={},
        versions=VersionsRemoved(count=len(ids), ids=id_runs(ids), numbers=[], stages={}),
        version_tags=0,
        metrics=0,
        comments=IdSet(count=0, ids=[]),
        documents=_no_documents(),
        lineage=_no_lineage(),
    )


def _version_deleted_v1(old: dict[str, Any]) -> ModelVersionDeleted:
    """{model_id, number, version} → ModelVersionDeleted."""
    return ModelVersionDeleted(
        model_id=old["model_id"],
        number=old["number"],
        version=old["version"],
        stage="",
        tags={},
        aliases=[],
        metrics=0,
        comments=IdSet(count=0, ids=[]),
        documents=_no_documents(),
        lineage=_no_lineage(),
    )


# (action, side) → a key the old shape lacks (its absence marks an old entry), the upgrade.
_UPGRADES: dict[tuple[Action, str], tuple[str, Callable[[dict[str, Any]], Any]]] = {
    (Action.MODEL_DELETED, "before"): ("lineage", _model_deleted_v1),
    (Action.MODEL_VERSION_DELETED, "before"): ("lineage", _version_deleted_v1),
}


@cache
def _fields(shape: Any) -> tuple[dict[str, Any], frozenset[str]]:
    return get_type_hints(shape), frozenset(shape.__required_keys__)


def _check(expected: Any, value: object, path: str) -> None:
    if expected is Any:
        return
    if is_typeddict(expected):
        if not isinstance(value, dict):
            raise ShapeError(f"{path}: expected an object, got {type(value).__name__}")
        fields, required = _fields(expected)
        if missing := required - value.keys():
            raise ShapeError(f"{path}: missing {', '.join(sorted(missing))}")
        if unknown := value.keys() - fields.keys():
            raise ShapeError(f"{path}: undeclared {', '.join(sorted(map(str, unknown)))}")
        for key, item in value.items():
            _check(fields[key], item, f"{path}.{key}")
        return
    origin, args = get_origin(expected), get_args(expected)
    if origin in (Union, types.UnionType):
        errors = []
        for option in args:
            try:
                _check(option, value, path)
                return
            except ShapeError as error:
                errors.append(str(error))
        raise ShapeError(" or ".join(errors))
    if origin is list:
        if not isinstance(value, list):
            raise ShapeError(f"{path}: expected a list, got {type(value).__name__}")
        for i, item in enumerate(value):
            _check(args[0], item, f"{path}[{i}]")
        return
    if origin is tuple:
        if not isinstance(value, list | tuple) or len(value) != len(args):
            raise ShapeError(f"{path}: expected a list of {len(args)}, got {value!r:.80}")
        for i, (option, item) in enumerate(zip(args, value, strict=True)):
            _check(option, item, f"{path}[{i}]")
        return
    if origin is dict:
        if not isinstance(value, dict):
            raise ShapeError(f"{path}: expected an object, got {type(value).__name__}")
        for key, item in value.items():
            _check(args[0], key, f"{path} key")
            _check(args[1], item, f"{path}.{key}")
        return
    if isinstance(expected, type) and issubclass(expected, Enum):
        if value not in {member.value for member in expected}:
            raise ShapeError(f"{path}: {value!r:.80} is not a {expected.__name__}")
        return
    if expected is type(None):
        if value is not None:
            raise ShapeError(f"{path}: expected null, got {value!r:.80}")
        return
    # JSON numbers: an integral float may come back as an int; a bool is never a number.
    accepted = (int, float) if expected is float else (expected,)
    if not isinstance(value, accepted) or (isinstance(value, bool) and expected is not bool):
        raise ShapeError(f"{path}: expected {expected.__name__}, got {value!r:.80}")


# A version's stage is a policy object of its own, ``Stage.<STAGE>`` with action ``write``: who may
# move a version into or out of a stage is decided apart from who may run the mutation.
STAGE_OBJECT = "Stage.{}"
NO_STAGE = "NONE"
# A hook that includes changes sends before/after (sensitive) to its URL: making one, or pointing
# one elsewhere, needs ``write`` on this object (in the policy's sensitive class).
INCLUDE_CHANGES_OBJECT = "Webhook.includeChanges"


def policy_objects(entry: Entry) -> list[str]:
    """The policy objects, beyond its mutation, that writing ``entry`` needs (``write`` on each):
    a stage change needs the stage it leaves and the one it enters; creating a version in a
    stage, or deleting one that is in a stage (or a model with versions in it), needs that
    stage; a webhook that includes changes, made or redirected, needs INCLUDE_CHANGES_OBJECT."""
    action = entry.action
    found = changes(entry)
    stages: list[str] = []
    if action == Action.MODEL_VERSION_STAGE_CHANGED:
        stages = [found["before"]["stage"], found["after"]["stage"]]
    elif action == Action.MODEL_VERSION_CREATED:
        stages = [found["after"]["stage"]]
    elif action == Action.MODEL_VERSION_DELETED:
        stages = [found["before"]["stage"]]
    elif action == Action.MODEL_DELETED:
        stages = [s for s, count in found["before"]["versions"]["stages"].items() if count]
    elif action in (Action.WEBHOOK_CREATED, Action.WEBHOOK_UPDATED) and found["after"].get(
        "include_changes"
    ):
        return [INCLUDE_CHANGES_OBJECT]
    return [STAGE_OBJECT.format(s) for s in dict.fromkeys(stages) if s and s != NO_STAGE]
