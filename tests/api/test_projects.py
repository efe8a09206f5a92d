"""createProject and the projects list."""

from tests import factories
from tests.conftest import Api


async def test_create_project_and_its_failures(api: Api) -> None:
    created = await factories.project(api, "fraud")
    assert created["name"] == "fraud"
    code, _ = await api.error(factories.PROJECT, name="fraud")
    assert code == "ALREADY_EXISTS"
    code, _ = await api.error(factories.PROJECT, name="")
    assert code == "INVALID_ARGUMENT"
    projects = await api("{ projects { totalCount edges { node { name } } } }")
    assert projects["projects"]["totalCount"] == 1
