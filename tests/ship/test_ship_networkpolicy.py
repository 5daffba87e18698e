"""Who may call which port of the verifier and the operator, evaluated like a CNI would on the rendered
NetworkPolicies: /auth from ingress controllers, /introspect from namespaces that opt in, /metrics from
the monitoring namespace (a kustomize parameter), nothing from a tenant's namespace."""

from __future__ import annotations

from typing import Any

import pytest
from kustomize_render import render
from ship_support import REPO

DIRECTORIES = ["manifests/base", "manifests/overlays/kind", "manifests/overlays/production"]
OBJECTS = {directory: render(REPO / directory) for directory in DIRECTORIES}
MONITORING = {
    "manifests/base": "monitoring",
    "manifests/overlays/kind": "monitoring",
    "manifests/overlays/production": "kube-prometheus-stack",
}
AUTH, INTROSPECT, METRICS = 8080, 8081, 9090


def find(directory: str, kind: str, name: str) -> dict[str, Any]:
    return next(doc for doc in OBJECTS[directory] if (doc["kind"], doc["metadata"]["name"]) == (kind, name))


def selects(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    """A LabelSelector (matchLabels, matchExpressions In/NotIn/Exists/DoesNotExist) against labels."""
    if any(labels.get(key) != value for key, value in (selector.get("matchLabels") or {}).items()):
        return False
    for expression in selector.get("matchExpressions") or []:
        key, operator, values = expression["key"], expression["operator"], expression.get("values", [])
        matched = {
            "In": key in labels and labels[key] in values,
            "NotIn": key not in labels or labels[key] not in values,
            "Exists": key in labels,
            "DoesNotExist": key not in labels,
        }[operator]
        if not matched:
            return False
    return True


def admitted_ports(policy: dict[str, Any], namespace: str, labels: dict[str, str] | None = None) -> set[int]:
    """The TCP ports a pod in ``namespace`` (with ``labels``) may reach on the pods the policy selects."""
    namespace_labels = {"kubernetes.io/metadata.name": namespace, **(labels or {})}
    ports: set[int] = set()
    for rule in policy["spec"].get("ingress", []):
        assert "from" in rule and "ports" in rule, "a rule without from or ports admits everyone or every port"
        for peer in rule["from"]:
            assert set(peer) == {"namespaceSelector"}, peer  # whole namespaces, no ipBlock
            assert peer["namespaceSelector"], "an empty namespaceSelector admits every namespace"
            if selects(peer["namespaceSelector"], namespace_labels):
                ports |= {port["port"] for port in rule["ports"] if port["protocol"] == "TCP"}
    return ports


@pytest.mark.parametrize("directory", DIRECTORIES)
def test_the_verifier_admits_each_audience_to_its_own_port_only(directory: str) -> None:
    policy = find(directory, "NetworkPolicy", "org-operator-verifier")
    assert set(policy["spec"]["policyTypes"]) == {"Ingress", "Egress"}
    expected = {
        ("ingress-nginx", None): {AUTH},
        ("traefik", None): {AUTH},
        ("envoy-gateway-system", None): {AUTH},
        ("kube-system", None): {AUTH},  # k3s's Traefik, RKE2's ingress-nginx
        ("haproxy", "org.alien.club/forward-auth"): {AUTH},
        ("platform", "org.alien.club/introspection"): {INTROSPECT},
        (MONITORING[directory], None): {METRICS},
        ("acme", None): set(),  # a tenant: nothing, not even /metrics
        ("monitoring" if MONITORING[directory] != "monitoring" else "prometheus", None): set(),
        ("platform", None): set(),  # introspection only once the namespace opts in
    }
    for (namespace, label), ports in expected.items():
        labels = {label: "true"} if label else {}
        assert admitted_ports(policy, namespace, labels) == ports, namespace


@pytest.mark.parametrize("directory", DIRECTORIES)
def test_the_policys_ports_are_the_ones_the_verifier_serves_each_surface_on(directory: str) -> None:
    deployment = find(directory, "Deployment", "org-operator-verifier")
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    args = container["args"]
    served = {flag: int(args[args.index(flag) + 1]) for flag in ("--port", "--introspection-port", "--metrics-port")}
    assert served == {"--port": AUTH, "--introspection-port": INTROSPECT, "--metrics-port": METRICS}
    policy = find(directory, "NetworkPolicy", "org-operator-verifier")
    for rule in policy["spec"]["ingress"]:
        assert len(rule["ports"]) == 1, "one audience per rule and port"
    assert {rule["ports"][0]["port"] for rule in policy["spec"]["ingress"]} == set(served.values())


def test_prometheus_scrapes_the_metrics_port() -> None:
    monitor = next(doc for doc in render(REPO / "manifests/monitoring") if doc["kind"] == "ServiceMonitor")
    service = find("manifests/base", "Service", "org-operator-verifier")
    port = next(port for port in service["spec"]["ports"] if port["name"] == monitor["spec"]["endpoints"][0]["port"])
    assert port["targetPort"] == "metrics" and port["port"] == METRICS


@pytest.mark.parametrize("directory", DIRECTORIES)
def test_the_operator_serves_its_metrics_to_the_same_monitoring_namespace(directory: str) -> None:
    policy = find(directory, "NetworkPolicy", "org-operator")
    assert admitted_ports(policy, MONITORING[directory]) == {9090}
    assert admitted_ports(policy, "acme") == set()
    assert admitted_ports(policy, "ingress-nginx") == set()
