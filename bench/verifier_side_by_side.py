"""CPU per ``/auth`` request of the verifier next to a bare aiohttp hello world, both loaded at once.

``verifier_throughput.py`` loads hello and the verifier one after the other. On the shared machines
this project runs on, the CPU cost of the same code moves by 10-20% from one minute to the next, so
its per-round ratios spread from about 0.6 to 1.1 and its median moves by about ±0.05 between runs.
Here the two servers share one CPU and are loaded at the same moment, each by its own wrk, so a slow
spell of the machine slows both. The ratio of their CPU per request, round by round, is what the
verifier costs over the HTTP stack. Their throughput is not compared: it follows the share of the
CPU the scheduler gives each.

The verifier is the real one (``org-operator verifier``, fed by list+watch from the emulated API
server on a thread of this process), one process per size; hello is the throughput bench's. Servers
run on the last CPU, this process and the load generators on the others. Both caches are shared
with the other server, so CPU per request is higher than when a server runs alone.

Needs wrk (``apt-get install wrk``). Usage:
    python bench/verifier_side_by_side.py [--seconds 5] [--rounds 10] [--sizes 10 10000 100000]
The last output line is one JSON object with the figures.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import tempfile
import threading
from pathlib import Path
from typing import Any

from verifier_common import cpu_seconds, emulator, pin, seeded_sizes, verifier
from verifier_throughput import LAST_USED_WINDOW, LIST_PAGE_SIZE, SIZES, TARGET_RATIO, load, start_hello

CONNECTIONS = 32


def side_by_side(servers: dict[str, tuple[str, int]], tokens_file: Path, seconds: int) -> dict[str, float]:
    """Load every server at once for ``seconds``; CPU microseconds per request of each."""
    results: dict[str, dict[str, Any]] = {}
    before = {name: cpu_seconds(pid) for name, (_, pid) in servers.items()}

    def run(name: str, url: str) -> None:
        results[name] = load(url, tokens_file, seconds, CONNECTIONS)

    threads = [threading.Thread(target=run, args=(name, url)) for name, (url, _) in servers.items()]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    cpu = {}
    for name, (_, pid) in servers.items():
        result = results[name]
        assert result["errors"] == 0 and result["non_2xx"] == 0, result
        cpu[name] = (cpu_seconds(pid) - before[name]) / result["requests"] * 1e6
    return cpu


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--sizes", type=int, nargs="+", default=SIZES)
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed: apt-get install wrk")
    cpus = sorted(os.sched_getaffinity(0))
    server_cpus = {cpus[-1]}
    if len(cpus) > 1:
        pin(os.getpid(), set(cpus[:-1]))
    hello, hello_url = start_hello()
    pin(hello.pid, server_cpus)
    figures: dict[str, Any] = {
        "bench": "verifier_side_by_side",
        "seconds_per_round": args.seconds,
        "rounds": args.rounds,
        "connections": CONNECTIONS,
        "server_cpus": sorted(server_cpus),
        "sizes": {},
    }
    try:
        with emulator() as api, tempfile.TemporaryDirectory() as scratch:
            tokens_file = Path(scratch) / "tokens.txt"
            for size in seeded_sizes(api, args.sizes, tokens_file):
                with verifier(
                    api.url,
                    ORG_OPERATOR_VERIFIER_LIST_PAGE_SIZE=LIST_PAGE_SIZE,
                    ORG_OPERATOR_LAST_USED_WINDOW=LAST_USED_WINDOW,
                ) as running:
                    pin(running.pid, server_cpus)
                    servers = {"hello": (hello_url, hello.pid), "verifier": (running.url, running.pid)}
                    side_by_side(servers, tokens_file, 1)  # warm-up
                    rounds = [side_by_side(servers, tokens_file, args.seconds) for _ in range(args.rounds)]
                ratios = [cpu["hello"] / cpu["verifier"] for cpu in rounds]
                figures["sizes"][str(size)] = {
                    "cpu_us_per_request": round(statistics.median(cpu["verifier"] for cpu in rounds), 2),
                    "hello_cpu_us_per_request": round(statistics.median(cpu["hello"] for cpu in rounds), 2),
                    "cpu_ratio": round(statistics.median(ratios), 3),
                    "cpu_ratio_range": [round(min(ratios), 3), round(max(ratios), 3)],
                }
                print(json.dumps({"size": size, **figures["sizes"][str(size)]}), flush=True)
    finally:
        hello.terminate()
        hello.wait(timeout=30)
    figures["min_cpu_ratio"] = min(size["cpu_ratio"] for size in figures["sizes"].values())
    figures["target_ratio"] = TARGET_RATIO
    figures["meets_target"] = figures["min_cpu_ratio"] >= TARGET_RATIO
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
