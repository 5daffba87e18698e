"""``python -m org_operator.emulators.kubernetes --port 0 --crds DIR``: serve until SIGINT/SIGTERM.

The first line on stdout is the URL. The request log is served at ``/_emulator/requests``
(GET; DELETE resets it) and the write count at ``/_emulator/writes?resource=PLURAL``.
"""

from __future__ import annotations

import argparse
import asyncio
import signal

from .emulator import KubernetesEmulator


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m org_operator.emulators.kubernetes")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument(
        "--crds",
        action="append",
        default=[],
        metavar="PATH",
        help="a CRD file or a directory of them; repeatable",
    )
    parser.add_argument(
        "--namespace",
        action="append",
        default=[],
        metavar="NAME[:KEY=VALUE,...]",
        help="a namespace to create, with labels; repeatable",
    )
    parser.add_argument("--kopf-peering", action="store_true", help="serve kopf's peering CRDs")
    parser.add_argument("--history-limit", type=int, default=10_000)
    args = parser.parse_args(argv)
    asyncio.run(_serve(args))


def _namespaces(specs: list[str]) -> dict[str, dict[str, str]]:
    seeds: dict[str, dict[str, str]] = {}
    for spec in specs:
        name, _, labels = spec.partition(":")
        seeds[name] = dict(pair.split("=", 1) for pair in labels.split(",") if pair)
    return seeds


async def _serve(args: argparse.Namespace) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    async with KubernetesEmulator.serve(
        crds=args.crds,
        namespaces=_namespaces(args.namespace),
        kopf_peering=args.kopf_peering,
        host=args.host,
        port=args.port,
        history_limit=args.history_limit,
    ) as api:
        print(api.url, flush=True)
        await stop.wait()


if __name__ == "__main__":
    main()
