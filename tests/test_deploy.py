"""deploy/ agrees with the code and with itself: settings that exist, one issuer, one policy dir.

Nothing here starts a container or a cluster; deploy/README.md says what else was checked.
"""

import json
import re
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml
from pydantic import BaseModel

from mlcatalog.settings import Settings

DEPLOY = Path(__file__).resolve().parents[1] / "deploy"


def compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    return loaded


def manifests() -> list[dict[str, Any]]:
    return [
        document
        for path in sorted((DEPLOY / "k8s").glob("*.yaml"))
        for document in yaml.safe_load_all(path.read_text())
        if document
    ]


def realm() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((DEPLOY / "keycloak" / "mlcatalog-realm.json").read_text())
    return loaded


def manifest(kind: str, name: str) -> dict[str, Any]:
    [found] = [m for m in manifests() if m["kind"] == kind and m["metadata"]["name"] == name]
    return found


def is_setting(variable: str) -> bool:
    """Whether MLCATALOG_A__B names a field of Settings, as pydantic-settings reads it."""
    model: type[BaseModel] = Settings
    *parents, leaf = variable.removeprefix("MLCATALOG_").lower().split("__")
    for part in parents:
        field = model.model_fields.get(part)
        annotation = field.annotation if field else None
        if not (isinstance(annotation, type) and issubclass(annotation, BaseModel)):
            return False
        model = annotation
    return leaf in model.model_fields


def test_every_mlcatalog_variable_the_deployments_set_is_a_setting() -> None:
    # A misspelt name is ignored by Settings (extra="ignore"): the deployment would run without it.
    services = compose()["services"]
    variables = {name for service in services.values() for name in service.get("environment", {})}
    for document in manifests():
        if document["kind"] in {"ConfigMap", "Secret"}:
            variables |= set(document.get("data", {})) | set(document.get("stringData", {}))
    unknown = sorted(v for v in variables if v.startswith("MLCATALOG_") and not is_setting(v))
    assert not unknown, f"not settings in mlcatalog.settings: {unknown}"


def test_compose_api_accepts_the_tokens_keycloak_issues() -> None:
    services = compose()["services"]
    api, keycloak = services["api"]["environment"], services["keycloak"]["environment"]
    client = next(
        c for c in realm()["clients"] if c["clientId"] == api["MLCATALOG_AUTH__CLIENT_ID"]
    )
    assert api["MLCATALOG_AUTH__ISSUER"] == f"{keycloak['KC_HOSTNAME']}/realms/{realm()['realm']}"
    assert api["MLCATALOG_AUTH__AUDIENCE"] in {
        m["config"]["included.client.audience"]
        for m in client["protocolMappers"]
        if m["protocolMapper"] == "oidc-audience-mapper"
    }
    groups_claim = api.get("MLCATALOG_AUTH__GROUPS_CLAIM", Settings().auth.groups_claim)
    assert groups_claim in {
        m["config"]["claim.name"]
        for m in client["protocolMappers"]
        if m["protocolMapper"] == "oidc-group-membership-mapper"
    }
    # The realm's ${…} placeholders are filled from Keycloak's environment.
    placeholders = re.findall(
        r"\$\{(\w+)\}", (DEPLOY / "keycloak" / "mlcatalog-realm.json").read_text()
    )
    assert set(placeholders) <= set(keycloak)
    assert client["secret"] == "${OIDC_CLIENT_SECRET}"
    assert api["MLCATALOG_AUTH__CLIENT_SECRET"] == keycloak["OIDC_CLIENT_SECRET"]


def test_compose_names_resolve_to_caddy_inside_and_caddy_serves_them() -> None:
    services = compose()["services"]
    api = services["api"]["environment"]
    [redirect] = next(c for c in realm()["clients"] if c["clientId"] == "mlcatalog")["redirectUris"]
    hosts = {urlsplit(api["MLCATALOG_AUTH__ISSUER"]).hostname, urlsplit(redirect).hostname}
    assert urlsplit(redirect).path == "/auth/callback"
    assert hosts <= set(services["caddy"]["networks"]["default"]["aliases"])
    sites = re.findall(r"^(\S+) \{$", (DEPLOY / "Caddyfile").read_text(), re.M)
    assert hosts <= set(sites)


def test_policies_are_mounted_read_only_where_the_api_reads_them() -> None:
    api = compose()["services"]["api"]
    policy_dir = api["environment"]["MLCATALOG_AUTH__POLICY_DIR"]
    assert f"../policies:{policy_dir}:ro" in api["volumes"]

    config = manifest("ConfigMap", "mlcatalog")["data"]
    pod = manifest("Deployment", "mlcatalog-api")["spec"]["template"]["spec"]
    [container] = pod["containers"]
    volume = next(v["name"] for v in pod["volumes"] if "configMap" in v)
    [mount] = [m for m in container["volumeMounts"] if m["name"] == volume]
    # subPath would freeze the files: the kubelet updates only whole ConfigMap volumes.
    assert mount == {
        "name": volume,
        "mountPath": config["MLCATALOG_AUTH__POLICY_DIR"],
        "readOnly": True,
    }


def test_kubernetes_api_runs_locked_down_behind_tls() -> None:
    pod = manifest("Deployment", "mlcatalog-api")["spec"]["template"]["spec"]
    [container] = pod["containers"]
    assert pod["securityContext"]["runAsNonRoot"] and pod["securityContext"]["runAsUser"] != 0
    assert container["securityContext"]["readOnlyRootFilesystem"]
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert {"secretRef": {"name": "mlcatalog-oidc"}} in container["envFrom"]
    oidc = manifest("Secret", "mlcatalog-oidc")["stringData"]
    assert {"MLCATALOG_AUTH__ISSUER", "MLCATALOG_AUTH__AUDIENCE"} <= set(oidc)
    ingress = manifest("Ingress", "mlcatalog")["spec"]
    covered = {host for tls in ingress["tls"] if tls.get("secretName") for host in tls["hosts"]}
    assert {rule["host"] for rule in ingress["rules"]} <= covered
