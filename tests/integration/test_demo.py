"""The README's demo command runs end to end on a fresh checkout."""

import subprocess
import sys


def test_demo_runs_and_shows_the_whole_story() -> None:
    result = subprocess.run([sys.executable, "-m", "org_operator.cli", "demo"], capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]
    out = result.stdout
    assert "x-org-service-account': 'client-globex'" in out
    assert "403 Bearer error=\"insufficient_scope\"" in out
    assert "old token refused with 401" in out
    assert "initech token now                -> 401" in out
    assert "to jane.doe@acme.example" in out
    assert "oat_" not in out  # the demo never prints a token
