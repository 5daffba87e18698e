"""The other ways to run the emulator: a background thread (sync clients) and a separate process."""

from __future__ import annotations

import json
import pathlib
import shutil
import subprocess
import sys
import urllib.request
from typing import Any

from kubernetes import client as k8s_client
from kubernetes import config as k8s_config

from org_operator.emulators.kubernetes import EmulatorThread


def http(method: str, url: str, body: Any = None) -> Any:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(
        url, data=data, method=method, headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request) as response:
        return json.loads(response.read())


def test_thread_serves_the_official_client(tmp_path: pathlib.Path, widget_crd: pathlib.Path) -> None:
    with EmulatorThread(crds=[widget_crd], namespaces={"team-a": {"org": "alien"}}) as api:
        kubeconfig = api.write_kubeconfig(tmp_path / "kubeconfig")
        api.seed_namespace("team-b", {"org": "other"})
        core = k8s_client.CoreV1Api(k8s_config.new_client_from_config(config_file=str(kubeconfig)))
        selected = core.list_namespace(label_selector="org=alien")
        assert [ns.metadata.name for ns in selected.items if ns.metadata] == ["team-a"]
        secret = k8s_client.V1Secret(metadata=k8s_client.V1ObjectMeta(name="s1"), string_data={"k": "v"})
        created = core.create_namespaced_secret("team-b", secret)
        assert created.data == {"k": "dg=="} and created.metadata and created.metadata.resource_version
        assert api.write_count("secrets") == 1
        assert {r.verb for r in api.log.records} >= {"list", "create"}
        api.reset_log()
        assert api.write_count() == 0


def test_process_prints_its_url_and_serves_stats(tmp_path: pathlib.Path, widget_crd: pathlib.Path) -> None:
    crds = tmp_path / "crds"
    crds.mkdir()
    shutil.copy(widget_crd, crds / "widget.yaml")
    command = [
        sys.executable,
        "-m",
        "org_operator.emulators.kubernetes",
        "--port",
        "0",
        "--crds",
        str(crds),
        "--namespace",
        "team-a:org=alien",
        "--kopf-peering",
    ]
    with subprocess.Popen(command, stdout=subprocess.PIPE, text=True) as process:
        try:
            assert process.stdout is not None
            url = process.stdout.readline().strip()
            assert url.startswith("http://127.0.0.1:")
            namespace = http("GET", f"{url}/api/v1/namespaces/team-a")
            assert namespace["metadata"]["labels"]["org"] == "alien"
            body = {"metadata": {"name": "w1"}, "spec": {"email": "a@b.test"}}
            http("POST", f"{url}/apis/golden.example.com/v1alpha1/namespaces/team-a/widgets", body)
            assert http("GET", f"{url}/apis/kopf.dev/v1")["resources"]
            assert http("GET", f"{url}/_emulator/writes?resource=widgets") == {"count": 1}
            assert [r["verb"] for r in http("GET", f"{url}/_emulator/requests")][-1] == "get"
            http("DELETE", f"{url}/_emulator/requests")
            assert http("GET", f"{url}/_emulator/requests") == []
        finally:
            process.terminate()
        assert process.wait(timeout=10) == 0
