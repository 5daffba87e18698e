"""hack/kind-e2e.sh cannot run here (no Docker engine, no kind): keep it correct by checking its inputs.

It is valid bash, every repository path it names exists, the overlay it applies renders and holds the
objects it addresses, and the token it waits for is one that examples/ creates. The Makefile runs it,
and runs the README's test command.
"""

from __future__ import annotations

import os
import re
import subprocess

from kustomize_render import WORKLOAD_KINDS, load_documents, render
from ship_support import REPO

SCRIPT = REPO / "hack" / "kind-e2e.sh"
TEXT = SCRIPT.read_text()
VARIABLES = dict(re.findall(r"^([A-Z_]+)=([\w.:/-]+)$", TEXT, flags=re.MULTILINE))


def test_is_executable_bash() -> None:
    assert os.access(SCRIPT, os.X_OK)
    subprocess.run(["bash", "-n", str(SCRIPT)], check=True)


def test_every_path_it_names_exists() -> None:
    paths = re.findall(r"(?<![\w/.-])((?:crds|manifests|examples|hack|docs)(?:/[\w.-]+)*)", TEXT)
    assert "manifests/overlays/kind" in paths
    for path in paths:
        assert (REPO / path).exists(), path
    assert "docker build" in TEXT and (REPO / "Dockerfile").is_file()


def test_the_overlay_it_applies_holds_what_it_addresses() -> None:
    objects = render(REPO / VARIABLES["OVERLAY"])
    names = {f"{doc['kind'].lower()}/{doc['metadata']['name']}" for doc in objects}
    for addressed in re.findall(r"\b((?:deployment|statefulset|service)/[\w-]+)", TEXT):
        assert addressed in names
    services = {doc["metadata"]["name"]: doc for doc in objects if doc["kind"] == "Service"}
    assert f'"$LOCAL_PORT:{services["org-operator-verifier"]["spec"]["ports"][0]["port"]}"' in TEXT
    pods = [doc["spec"]["template"]["spec"] for doc in objects if doc["kind"] in WORKLOAD_KINDS]
    assert {container["image"] for pod in pods for container in pod["containers"]} == {VARIABLES["IMAGE"]}


def test_the_token_it_waits_for_comes_from_the_examples() -> None:
    documents = [doc for path in sorted((REPO / "examples").glob("*.yaml")) for doc in load_documents(path)]
    namespace = next(doc for doc in documents if doc["kind"] == "Namespace"
                     and doc["metadata"]["name"] == VARIABLES["NAMESPACE"])
    assert namespace["metadata"]["labels"]["org.alien.club/plan"] == "enterprise"
    token = next(doc for doc in documents if doc["kind"] == "OrgApiToken"
                 and doc["metadata"]["name"] == VARIABLES["TOKEN"])
    assert token["metadata"]["namespace"] == VARIABLES["NAMESPACE"]
    assert "secretName" not in token["spec"]  # so the Secret has the token's name


def test_makefile_runs_the_readme_test_command_and_the_script() -> None:
    readme = (REPO / "README.md").read_text()
    command = re.search(r"Run the tests:\s*```sh\n(.+?)\n```", readme, flags=re.DOTALL).group(1)
    makefile = (REPO / "Makefile").read_text()
    assert f"test:\n\t{command}\n" in makefile
    assert "e2e:\n\thack/kind-e2e.sh\n" in makefile
