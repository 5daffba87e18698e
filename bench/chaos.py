"""Chaos run (issue 12): real operator replicas and verifier, killed and restarted, against emulated
Kubernetes and Authentik with faults, while a seeded workload runs; invariants checked throughout.

    .venv/bin/python bench/chaos.py --lifecycles 200              # the long run, this checkout
    .venv/bin/python bench/chaos.py --seed 7 --product /work/wt-base   # replay seed 7 on another checkout

The last output line is one JSON object. A violation also prints the seed, the schedule and the
history (saved in <logs>/history.txt); the exit status is 1.
"""

from __future__ import annotations

import argparse
import faulthandler
import json
import signal
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests" / "chaos"))

from chaos_harness import Options, Product, chaos_run  # noqa: E402


def _stop(signum: int, _frame: object) -> None:
    """SIGTERM (and SIGINT, which a background job ignores) end the run cleanly: processes stopped."""
    raise SystemExit(128 + signum)


def main() -> int:
    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    faulthandler.register(signal.SIGUSR1)  # `kill -USR1 <pid>`: every thread's stack, when a run seems stuck
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--lifecycles", type=int, default=24)
    parser.add_argument("--per-round", type=int, default=8, help="lifecycles between convergence checks")
    parser.add_argument("--concurrency", type=int, default=3)
    parser.add_argument("--outage", type=float, default=60.0, help="seconds of the one Authentik outage")
    parser.add_argument("--product", type=Path, default=Path(__file__).resolve().parent.parent,
                        help="the checkout under test (its crds/ and .venv/bin/org-operator)")
    parser.add_argument("--no-kube-faults", action="store_true", help="only kills, partitions and Authentik faults")
    parser.add_argument("--logs", type=Path, default=None, help="where process logs and history.txt go")
    args = parser.parse_args()
    logs = args.logs or Path(tempfile.mkdtemp(prefix=f"chaos-{args.seed}-"))
    options = Options(seed=args.seed, lifecycles=args.lifecycles, per_round=args.per_round,
                      concurrency=args.concurrency, outage=args.outage, kube_faults=not args.no_kube_faults,
                      logs=logs)
    result, run = chaos_run(Product(args.product.resolve()), options)
    if run.violations:
        print(run.report(), file=sys.stderr)
    print(f"logs: {logs}", file=sys.stderr)
    print(json.dumps(result))
    return 1 if run.violations else 0


if __name__ == "__main__":
    sys.exit(main())
