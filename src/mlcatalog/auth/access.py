"""Who may read and change what: the Casbin policy in policies/, and each caller's access.

The policy (policies/model.conf, policies/policy.csv) is RBAC with domains; the domain is a
project's name, or ``*`` for every project. Objects are GraphQL schema coordinates: ``Type.field``
with action ``read``, ``Mutation.name`` with ``write`` (or ``write-own``: only on what the caller
created). Request subjects are ``user:<subject>`` and ``group:<group>``, never bare names, so no
user can be named like a role. An API token acts as the role it was made for, in its project only.

Casbin evaluates one decision in about 0.1 ms, so decisions are cached per policy (a reload
makes a new Policy and so a new cache), and an ``Access`` folds them, per caller, into what the
API asks: may this field be read in every project the caller sees, in none, or does it depend on
the entity's project?
"""

import hashlib
import json
import logging
from dataclasses import dataclass, field
from enum import Enum
from functools import lru_cache
from pathlib import Path
from typing import ClassVar, Protocol

import casbin
from casbin.persist.adapters.string_adapter import StringAdapter
from casbin.util.builtin_operators import glob_match

from mlcatalog.auth.principal import Method, Principal
from mlcatalog.store.visibility import EVERYTHING, Visible

log = logging.getLogger("mlcatalog.auth")

EVERY_PROJECT = "*"
# Groups beyond this many in one token are ignored: the policy only grants, so fewer groups can
# only mean less access, and a token with 100,000 groups cannot make each decision cost 100,000.
MAX_GROUPS = 256
READ, WRITE, WRITE_OWN = "read", "write", "write-own"
AUTHENTICATED = "authenticated"  # the role every caller holds
# Whoever may read a project's name sees the project: its entities appear in lists and counts.
SEES_PROJECT = "Project.name"


class PolicyError(ValueError):
    """The policy files are missing or do not parse."""


@dataclass(frozen=True)
class PolicyFiles:
    model: Path
    policy: Path

    @classmethod
    def in_directory(cls, directory: Path) -> "PolicyFiles":
        return cls(directory / "model.conf", directory / "policy.csv")

    def stamp(self) -> tuple[float, ...]:
        """What changes when either file is edited or replaced."""
        try:
            return tuple(p.stat().st_mtime_ns for p in (self.model, self.policy))
        except OSError as error:
            raise PolicyError(f"cannot read the policy: {error}") from error

    def read(self) -> tuple[str, str]:
        """Both files' text, each read once: what loads is what the digest covers."""
        try:
            return self.model.read_text(), self.policy.read_text()
        except (OSError, UnicodeDecodeError) as error:
            raise PolicyError(f"cannot read the policy: {error}") from error


class Policy:
    """One load of the policy files: a Casbin enforcer and the decisions it made."""

    def __init__(self, files: PolicyFiles) -> None:
        self.files = files
        # The stamp first: an edit after it shows as a newer stamp, and loads again.
        self.stamp = files.stamp()
        model_text, policy_text = files.read()
        self.digest = hashlib.sha256((model_text + policy_text).encode()).hexdigest()
        try:
            enforcer = casbin.Enforcer(
                casbin.Enforcer.new_model(text=model_text), StringAdapter(policy_text)
            )
        except Exception as error:  # casbin raises whatever its parsers raise
            raise PolicyError(
                f"the policy in {files.policy.parent} does not load: {error}"
            ) from error
        # A `g` line for domain `*` gives its role in every project.
        enforcer.add_named_domain_matching_func("g", _domain_matches)
        self.enforcer = enforcer
        model = enforcer.get_model().model
        self.lines = sum(len(a.policy) for s in ("p", "g") for a in model[s].values())
        # Projects some line names: the others are decided alike, as the domain `*` is.
        permission_domains = {line[1] for line in model["p"]["p"].policy}
        role_domains = {line[2] for line in model["g"]["g"].policy}
        self.named = frozenset((permission_domains | role_domains) - {EVERY_PROJECT})
        # Projects with permissions of their own: decided apart even for the same roles.
        self.own_permissions = frozenset(permission_domains - {EVERY_PROJECT})
        self.decide = lru_cache(maxsize=200_000)(self._decide)
        # One Access per set of grants, so its verdicts outlive the request that made them.
        self.access = lru_cache(maxsize=10_000)(self._access)

    def _access(self, grants: tuple["Grant", ...]) -> "Access":
        return Access(self, grants)

    def _decide(self, subject: str, domain: str, obj: str, action: str) -> bool:
        return bool(self.enforcer.enforce(subject, domain, obj, action))

    def roles(self, subject: str, domain: str) -> frozenset[str]:
        return frozenset(self.enforcer.get_implicit_roles_for_user(subject, domain))

    def explain(self, subject: str, domain: str, obj: str, action: str) -> list[str]:
        """The line that allows the request, or none."""
        allowed, rule = self.enforcer.enforce_ex(subject, domain, obj, action)
        return [str(part) for part in rule] if allowed else []

    def granted(self, obj: str) -> bool:
        """Whether a permission line other than an everything pattern (``*``) names ``obj``,
        by its class or a pattern: deny by default means each field is decided for itself."""
        model = self.enforcer.get_model().model
        classes = {line[1] for line in model["g"].get("g2", _NO_GROUPS).policy if line[0] == obj}
        for line in model["p"]["p"].policy:
            pattern = line[2]
            if pattern != "*" and (
                pattern in classes or (not classes and glob_match(obj, pattern))
            ):
                return True
        return False


class _NoGroups:
    policy: ClassVar[list[list[str]]] = []


_NO_GROUPS = _NoGroups()


def _domain_matches(requested: str, line: str) -> bool:
    return line == EVERY_PROJECT or requested == line


class Policies:
    """The current policy; the app's watcher calls ``reload_if_changed`` every ``check_seconds``."""

    def __init__(self, files: PolicyFiles, check_seconds: float = 1.0) -> None:
        self.files = files
        self.check_seconds = check_seconds
        self.current = Policy(files)

    def reload_if_changed(self) -> Policy | None:
        """The new policy when the files changed and load; a broken edit keeps the old one."""
        try:
            if self.files.stamp() == self.current.stamp:
                return None
            policy = Policy(self.files)
        except PolicyError as error:
            log.error("policy not reloaded, the previous one stays: %s", error)
            return None
        unchanged = policy.digest == self.current.digest
        self.current = policy
        if unchanged:
            return None
        log.info("policy reloaded: %s lines, sha256 %s", policy.lines, policy.digest)
        return policy


class Verdict(Enum):
    ALLOW = "allow"  # in every project the caller sees
    DENY = "deny"  # in none
    DEPENDS = "depends"  # on the entity's project


@dataclass(frozen=True)
class Grant:
    """A Casbin subject the caller acts as, in every project or in one only (an API token)."""

    subject: str
    only: str | None = None


def grants_of(principal: Principal) -> tuple[Grant, ...]:
    """Every caller also acts as ``authenticated`` (within its token's project for a token):
    what anyone who logged in may do, such as asking who they are (Query.me)."""
    if principal.token is not None:
        project = principal.token.project
        return (Grant(principal.token.role, project), Grant(AUTHENTICATED, project))
    if principal.method is Method.DEVELOPMENT:
        return (Grant("admin"),)  # the local development user is the one local admin
    groups = principal.groups[:MAX_GROUPS]
    return (
        Grant(f"user:{principal.subject}"),
        *(Grant(f"group:{g}") for g in groups),
        Grant(AUTHENTICATED),
    )


@dataclass
class Access:
    """What one caller may do under one policy."""

    policy: Policy
    grants: tuple[Grant, ...]
    # Projects decided one by one; every other project is decided as the domain `*`.
    domains: tuple[str, ...] = field(init=False)
    _verdicts: dict[tuple[str, str], Verdict] = field(init=False, default_factory=dict)
    _visible: dict[str, Visible] = field(init=False, default_factory=dict)
    _uniform: bool | None = field(init=False, default=None)
    # Every decision this access makes, and every project it sees, follows from the policy's text
    # and the grants: a digest of both names them (the response cache's key, api/cache.py).
    fingerprint: str = field(init=False)

    def __post_init__(self) -> None:
        only = {g.only for g in self.grants if g.only is not None}
        self.domains = tuple(sorted(self.policy.named | only))
        named = [self.policy.digest, *((g.subject, g.only) for g in self.grants)]
        self.fingerprint = hashlib.sha256(json.dumps(named).encode()).hexdigest()

    def allows(self, obj: str, action: str, project: str | None) -> bool:
        """In ``project`` (None: what belongs to no project, decided as the domain ``*``)."""
        domain = project if project in self.domains else EVERY_PROJECT
        return any(
            self.policy.decide(g.subject, domain, obj, action)
            for g in self.grants
            if g.only is None or g.only == project
        )

    def verdict(self, obj: str, action: str = READ) -> Verdict:
        key = (obj, action)
        found = self._verdicts.get(key)
        if found is None:
            found = self._verdicts[key] = self._fold(obj, action)
        return found

    def _fold(self, obj: str, action: str) -> Verdict:
        # A caller who sees no project is decided as the domain `*`: it may still ask who it is.
        seen = [self.allows(obj, action, d) for d in self.visible_domains() or [None]]
        if seen and all(seen):
            return Verdict.ALLOW
        return Verdict.DEPENDS if any(seen) else Verdict.DENY

    @property
    def uniform(self) -> bool:
        """Whether every project the caller sees is decided alike (the common case: roles given
        for every project), so that no field's decision depends on an entity's project."""
        if self._uniform is None:
            signatures = {self._signature(d) for d in self.visible_domains()}
            self._uniform = len(signatures) <= 1
        return self._uniform

    def _signature(self, domain: str | None) -> object:
        if domain is not None and domain in self.policy.own_permissions:
            return domain
        return frozenset(
            (g.subject, role)
            for g in self.grants
            if g.only is None or g.only == domain
            for role in self.policy.roles(g.subject, domain or EVERY_PROJECT)
        )

    def visible_domains(self) -> list[str | None]:
        """The domains whose entities the caller sees (None: every project no line names)."""
        visible = self.visible()
        named: list[str | None] = [d for d in self.domains if visible.shows(d)]
        return [*named, None] if visible.only is None else named

    def visible(self, obj: str = SEES_PROJECT) -> Visible:
        """The projects whose entities lists, counts, search and lineage may show: those where
        the caller may read ``obj`` (a root list may narrow it: auditLog to where the caller
        may read the journal)."""
        found = self._visible.get(obj)
        if found is None:
            sees = frozenset(d for d in self.domains if self.allows(obj, READ, d))
            every_other = any(g.only is None for g in self.grants) and self.allows(obj, READ, None)
            hidden = frozenset(self.domains) - sees
            found = Visible(hidden=hidden) if every_other else Visible(only=sees)
            self._visible[obj] = found
        return found


def access_of(policy: Policy, principal: Principal | None) -> Access:
    """``principal`` None: no one (the GraphiQL page, which runs no operation)."""
    return policy.access(() if principal is None else grants_of(principal))


class Rights(Protocol):
    """What the API asks of a caller's access (Access, or Unrestricted in process)."""

    @property
    def uniform(self) -> bool: ...

    def allows(self, obj: str, action: str, project: str | None) -> bool: ...

    def verdict(self, obj: str, action: str = READ) -> Verdict: ...

    def visible(self, obj: str = SEES_PROJECT) -> Visible: ...


class Unrestricted:
    """Every right: contexts built in process (tests, scripts) that act as the catalog itself."""

    uniform = True

    def allows(self, obj: str, action: str, project: str | None) -> bool:
        return True

    def verdict(self, obj: str, action: str = READ) -> Verdict:
        return Verdict.ALLOW

    def visible(self, obj: str = SEES_PROJECT) -> Visible:
        return EVERYTHING


UNRESTRICTED = Unrestricted()
