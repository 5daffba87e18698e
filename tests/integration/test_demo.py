"""The README's demo command: end to end on a fresh checkout, stoppable at once, clear when incomplete."""

import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "operator" / "org_operator"


def test_demo_runs_and_shows_the_whole_story() -> None:
    result = subprocess.run([sys.executable, "-m", "org_operator.cli", "demo"], capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]
    out = result.stdout
    assert "x-org-service-account': 'client-globex'" in out
    assert "403 Bearer error=\"insufficient_scope\"" in out
    assert "old token refused with 401" in out
    assert "(RevokedByRequest), last used 20" in out  # the revoked token's record, its use in step 5 included
    assert "previous value                   -> 200 until" in out  # both values verify during the overlap
    assert "initech token now                -> 401" in out
    assert "to jane.doe@acme.example" in out
    assert "oat_" not in out  # the demo never prints a token


@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGINT])
def test_demo_stops_within_two_seconds(stop: signal.Signals) -> None:
    demo = subprocess.Popen([sys.executable, "-m", "org_operator.cli", "demo"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        assert demo.stdout is not None
        for line in demo.stdout:  # once the operator runs and the examples are being applied
            if "applied" in line:
                break
        demo.send_signal(stop)
        sent = time.monotonic()
        code = demo.wait(timeout=10)
        assert time.monotonic() - sent <= 2.0
        assert code != 0 and "stopped before the demo finished" in demo.stderr.read()  # type: ignore[union-attr]
    finally:
        demo.kill()
        demo.wait()


def test_demo_without_its_files_says_what_is_missing_and_exits(tmp_path: Path) -> None:
    """The package alone, as a wheel built without crds/ and examples/ would install it."""
    shutil.copytree(PACKAGE, tmp_path / "site" / "org_operator", ignore=shutil.ignore_patterns("__pycache__", "data"))
    result = subprocess.run([sys.executable, "-m", "org_operator.cli", "demo"], capture_output=True, text=True,
                            timeout=30, cwd=tmp_path, env={"PYTHONPATH": str(tmp_path / "site"), "PATH": ""})
    assert result.returncode == 1
    assert "the demo needs crds/" in result.stderr and "Traceback" not in result.stderr
