"""The pods: restricted security everywhere, resources, probes that match the programs, settings they accept.

Checked on the rendered base and both overlays, so a patch cannot undo the hardening unnoticed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from kustomize_render import WORKLOAD_KINDS, render
from ship_support import REPO

from org_operator.settings import OperatorSettings
from org_operator.verifier.config import INTROSPECTION_TOKEN_FILE_ENV, LAST_USED_WINDOW_ENV, VerifierConfig

DIRECTORIES = ["manifests/base", "manifests/overlays/kind", "manifests/overlays/production"]
RESTRICTED_CONTAINER = {
    "runAsNonRoot": True,
    "runAsUser": 10001,
    "readOnlyRootFilesystem": True,
    "allowPrivilegeEscalation": False,
    "capabilities": {"drop": ["ALL"]},
    "seccompProfile": {"type": "RuntimeDefault"},
}
OBJECTS = {directory: render(REPO / directory) for directory in DIRECTORIES}


def pods(directory: str) -> list[tuple[str, dict[str, Any]]]:
    return [(doc["metadata"]["name"], doc["spec"]["template"]) for doc in OBJECTS[directory]
            if doc["kind"] in WORKLOAD_KINDS]


def find(directory: str, kind: str, name: str) -> dict[str, Any]:
    return next(doc for doc in OBJECTS[directory] if (doc["kind"], doc["metadata"]["name"]) == (kind, name))


def template(directory: str, workload: str) -> dict[str, Any]:
    return dict(pods(directory))[workload]


def container(directory: str, workload: str) -> dict[str, Any]:
    return template(directory, workload)["spec"]["containers"][0]


def mounts(pod: dict[str, Any], container_: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Mount path -> the volume mounted there."""
    volumes = {volume["name"]: volume for volume in pod["spec"].get("volumes", [])}
    return {mount["mountPath"]: volumes[mount["name"]] for mount in container_.get("volumeMounts", [])}


@pytest.mark.parametrize("directory", DIRECTORIES)
def test_every_pod_is_restricted(directory: str) -> None:
    assert len(pods(directory)) == 2
    for name, pod in pods(directory):
        spec = pod["spec"]
        assert spec["securityContext"]["runAsNonRoot"] is True, name
        assert spec["securityContext"]["runAsUser"] == 10001, name
        assert spec["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}, name
        assert not {"hostNetwork", "hostPID", "hostIPC"} & set(spec), name
        assert all("hostPath" not in volume for volume in spec.get("volumes", [])), name
        for container_ in [*spec.get("initContainers", []), *spec["containers"]]:
            assert container_["securityContext"] == RESTRICTED_CONTAINER, (name, container_["name"])
            assert mounts(pod, container_)["/tmp"]["emptyDir"] is not None, "read-only root needs a writable /tmp"
            resources = container_["resources"]
            assert set(resources["requests"]) == set(resources["limits"]) == {"cpu", "memory"}, name


def test_namespace_enforces_the_restricted_pod_security_standard() -> None:
    namespace = find("manifests/base", "Namespace", "org-operator")
    assert namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"


def test_operator_probe_is_kopfs_liveness_endpoint() -> None:
    operator = container("manifests/base", "org-operator")
    liveness = next(arg for arg in operator["args"] if arg.startswith("--liveness="))
    probe = operator["livenessProbe"]["httpGet"]
    port = next(p["containerPort"] for p in operator["ports"] if p["name"] == probe["port"])
    assert liveness == f"--liveness=http://0.0.0.0:{port}{probe['path']}"
    assert "--standalone" not in operator["args"]


def test_verifier_probes_and_service_reach_its_port() -> None:
    verifier = container("manifests/base", "org-operator-verifier")
    args = verifier["args"]
    flags = {"http": "--port", "introspect": "--introspection-port", "metrics": "--metrics-port"}
    ports = {name: int(args[args.index(flag) + 1]) for name, flag in flags.items()}
    assert verifier["ports"] == [{"name": name, "containerPort": port} for name, port in ports.items()]
    assert verifier["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
    assert verifier["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    service = find("manifests/base", "Service", "org-operator-verifier")
    assert service["spec"]["ports"] == [
        {"name": "http", "port": 80, "targetPort": "http"},
        {"name": "introspect", "port": ports["introspect"], "targetPort": "introspect"},
        {"name": "metrics", "port": ports["metrics"], "targetPort": "metrics"},
    ]
    pod_labels = template("manifests/base", "org-operator-verifier")["metadata"]["labels"]
    budget = find("manifests/base", "PodDisruptionBudget", "org-operator-verifier")
    assert budget["spec"]["minAvailable"] == 1
    for selector in (service["spec"]["selector"], budget["spec"]["selector"]["matchLabels"]):
        assert selector.items() <= pod_labels.items()


def test_network_policies_select_the_pods_and_open_what_they_need() -> None:
    policies = [doc for doc in OBJECTS["manifests/base"] if doc["kind"] == "NetworkPolicy"]
    selected = {}
    for policy in policies:
        for name, pod in pods("manifests/base"):
            if policy["spec"]["podSelector"]["matchLabels"].items() <= pod["metadata"]["labels"].items():
                selected[name] = policy["spec"]
    assert set(selected) == {"org-operator", "org-operator-verifier"}
    egress_ports = {name: {port["port"] for rule in spec["egress"] for port in rule["ports"]}
                    for name, spec in selected.items()}
    assert {53, 443, 6443} <= egress_ports["org-operator"] & egress_ports["org-operator-verifier"]
    assert {9000, 9443} <= egress_ports["org-operator"]  # Authentik in the cluster
    # who may call which port: test_ship_networkpolicy.py


def environment(directory: str, workload: str, files: dict[str, Path]) -> dict[str, str]:
    """The container's environment as the kubelet would set it (for pod 1), with mounted files moved to ``files``."""
    configmap = find(directory, "ConfigMap", "org-operator")["data"]
    env = {}
    pod_fields = {"metadata.name": f"{workload}-1", "metadata.labels['apps.kubernetes.io/pod-index']": "1"}
    for variable in container(directory, workload)["env"]:
        if "value" in variable:
            env[variable["name"]] = str(files.get(variable["value"], variable["value"]))
        elif "fieldRef" in variable["valueFrom"]:
            env[variable["name"]] = pod_fields[variable["valueFrom"]["fieldRef"]["fieldPath"]]
        else:
            reference = variable["valueFrom"]["configMapKeyRef"]
            assert reference["name"] == "org-operator"
            if reference["key"] in configmap:
                env[variable["name"]] = configmap[reference["key"]]
            else:
                assert reference.get("optional"), variable
    return env


@pytest.mark.parametrize("directory", DIRECTORIES)
def test_operator_accepts_its_settings(directory: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    operator = template(directory, "org-operator")
    secret_mount = mounts(operator, operator["spec"]["containers"][0])["/var/run/secrets/authentik"]
    assert secret_mount["secret"]["secretName"] == "org-operator-authentik"
    assert secret_mount["secret"]["items"] == [{"key": "token", "path": "token"}]
    token = tmp_path / "token"
    token.write_text("authentik-api-token\n")
    env = environment(directory, "org-operator", {"/var/run/secrets/authentik/token": token})
    known = {f"ORG_OPERATOR_{field.upper()}" for field in OperatorSettings.model_fields}
    assert set(env) <= known
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    settings = OperatorSettings()
    assert settings.authentik_token_file == token
    assert (settings.authentik_url is None) == (directory != "manifests/overlays/production")


@pytest.mark.parametrize("directory", DIRECTORIES)
def test_verifier_accepts_its_settings(directory: str, tmp_path: Path) -> None:
    verifier = template(directory, "org-operator-verifier")
    secret_mount = mounts(verifier, verifier["spec"]["containers"][0])["/var/run/secrets/introspection"]
    assert secret_mount["secret"]["items"] == [{"key": "credential", "path": "credential"}]
    credential = tmp_path / "credential"
    credential.write_text("introspection-credential\n")
    env = environment(directory, "org-operator-verifier", {"/var/run/secrets/introspection/credential": credential})
    assert set(env) == {INTROSPECTION_TOKEN_FILE_ENV, LAST_USED_WINDOW_ENV}
    config = VerifierConfig.from_env(env)
    assert config.introspection_token is not None
    assert config.introspection_token.get_secret_value() == "introspection-credential"
