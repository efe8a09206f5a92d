"""auditLog: the journal read back, filtered and paged."""

from tests import factories
from tests.conftest import Api


async def test_audit_log_filters_by_action_actor_and_project(api: Api) -> None:
    await factories.catalog(api)
    log = """query($filter: AuditFilter) { auditLog(filter: $filter) { totalCount edges { node {
      action actor entityType before after } } } }"""
    everything = (await api(log))["auditLog"]
    assert everything["totalCount"] == 3
    assert [e["node"]["action"] for e in everything["edges"]] == [
        "model_version.created",
        "model.registered",
        "project.created",
    ]
    registered = (await api(log, filter={"action": "model.registered", "project": "fraud"}))[
        "auditLog"
    ]
    assert registered["totalCount"] == 1
    assert registered["edges"][0]["node"]["after"]["name"] == "fraud-detector"
    assert (await api(log, filter={"actor": "nobody"}))["auditLog"]["totalCount"] == 0
