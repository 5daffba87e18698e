"""The short seeded chaos run CI makes (issue 12): this checkout's operator replicas and verifier as
real processes, killed and restarted, Kubernetes and Authentik faults, invariants 1-7 checked.

Find it with ``-m chaos``; replay a failure with ``bench/chaos.py --seed N`` (the report says how).
The long run is ``bench/chaos.py --lifecycles 200``.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from chaos_harness import Options, Product, chaos_run

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.chaos
def test_a_short_seeded_chaos_run_keeps_every_invariant(tmp_path: Path) -> None:
    seed = int(os.environ.get("ORG_OPERATOR_CHAOS_SEED", "12"))
    # Shorter Authentik stalls (and timeout) than the long run's, so held deletions wait seconds, not 31 s.
    options = Options(seed=seed, lifecycles=6, per_round=3, outage=4.0, converge_within=30.0, logs=tmp_path,
                      stall=(3.0, 6.0), authentik_timeout=2.0)
    result, run = chaos_run(Product(REPO), options)
    assert run.violations == [], run.report()
    assert result["lifecycles"] == 6
    assert result["invariant_checks"] > 0 and result["token_values"] > 0, result
    assert sum(result["faults"].values()) >= 6, result
    assert result["rotate_requests"] > 0 and result["forced_resets"] > 0, result
