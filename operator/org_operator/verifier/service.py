"""The running verifier: list+watch feeds, the lastUsedAt writer and the HTTP server, as one unit."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import signal

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError

from ..api.constants import API_TOKENS, SERVICE_ACCOUNTS
from ..kube import Kube, path
from .app import AUTH, Handlers, build_app, listeners
from .config import VerifierConfig
from .feed import Feed
from .freshness import Freshness
from .index import Store, TokenIndex
from .metrics import Metrics
from .usage import LastUsed

log = logging.getLogger(__name__)
http_log = logging.getLogger(__name__ + ".http")


class WithoutRequestBytes(logging.Filter):
    """aiohttp logs a request it cannot parse (a control character in a header, say) at ERROR with the
    offending line, which may hold a token: keep only the kind of error, at WARNING (the client's fault)."""

    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        if isinstance(error, HttpProcessingError):
            record.msg = "refused a request HTTP does not allow (%s) from %s"
            record.args = (type(error).__name__, *(record.args or ("?",))[:1])  # type: ignore[misc]
            record.exc_info = record.exc_text = None
            record.levelno, record.levelname = logging.WARNING, "WARNING"
        return True


http_log.addFilter(WithoutRequestBytes())

_FINAL_FLUSH_SECONDS = 5.0


class Verifier:
    """Start with ``async with``; the server answers at once (503 and not ready until listed)."""

    def __init__(self, config: VerifierConfig, kube: Kube) -> None:
        self.config = config
        self.index = TokenIndex()
        self.feeds: list[Feed] = []
        self.freshness = Freshness(self.feeds, config.stale_after)
        self.metrics = Metrics(self.index, self.freshness)
        self.feeds += [
            self._feed(kube, plural, store, namespace)
            for plural, store in ((API_TOKENS, self.index.tokens), (SERVICE_ACCOUNTS, self.index.accounts))
            for namespace in config.namespaces or (None,)
        ]
        self.usage = LastUsed(
            kube,
            self.index.tokens,
            window=config.last_used_window,
            concurrency=config.last_used_concurrency,
            writes=self.metrics.last_used_writes,
        )
        handlers = Handlers(
            self.index,
            self.metrics,
            introspection_token=config.introspection_token,
            freshness=self.freshness,
        )
        self._runners = [
            (
                port,
                surfaces,
                web.AppRunner(
                    build_app(handlers, surfaces),
                    access_log=None,
                    logger=http_log,
                    max_line_size=config.max_header_size,
                    max_field_size=config.max_header_size,
                ),
            )
            for port, surfaces in listeners(config.port, config.introspection_port, config.metrics_port)
        ]
        self._tasks: list[asyncio.Task[None]] = []

    def _feed(self, kube: Kube, plural: str, store: Store, namespace: str | None) -> Feed:
        return Feed(
            kube,
            path(plural, namespace),
            store,
            kind=plural,
            namespace=namespace,
            page_size=self.config.list_page_size,
            watch_timeout=self.config.watch_timeout_seconds,
            on_restart=lambda kind, reason: self.metrics.watch_restarts.labels(kind, reason).inc(),
            on_listed=self.freshness.check,
        )

    def ready(self) -> bool:
        """True while every feed has listed and heard from the API server within ``stale_after``."""
        return self.freshness.serving

    @property
    def url(self) -> str:
        """Where /auth and the probes are served."""
        return self.urls[AUTH]

    @property
    def urls(self) -> dict[str, str]:
        """Where each surface (auth, introspect, metrics) is served."""
        found = {}
        for _, surfaces, runner in self._runners:
            host, port = runner.addresses[0][:2]
            found |= {surface: f"http://{host}:{port}" for surface in surfaces}
        return found

    async def __aenter__(self) -> Verifier:
        for port, _, runner in self._runners:
            await runner.setup()
            await web.TCPSite(runner, self.config.host, port).start()
        self._tasks = [asyncio.create_task(feed.run(), name=f"watch {feed.kind}") for feed in self.feeds]
        self._tasks.append(asyncio.create_task(self.usage.run(), name="lastUsedAt writer"))
        self._tasks.append(asyncio.create_task(self.freshness.run(), name="freshness"))
        self._tasks.append(asyncio.create_task(self._freeze_when_listed(), name="gc freeze"))
        log.info(
            "verifier listening on %s, namespaces: %s, introspection %s, fails closed after %g s without "
            "word from the API server",
            ", ".join(f"{surface} {url}" for surface, url in sorted(self.urls.items())),
            ", ".join(self.config.namespaces) or "all",
            "enabled" if self.config.introspection_token else "disabled (no credential configured)",
            self.config.stale_after,
        )
        return self

    async def _freeze_when_listed(self) -> None:
        """Once the index is loaded, exempt it from the cyclic garbage collector.

        At 100,000 tokens every full collection would walk the whole index again, a pause that the
        requests pay for; what is loaded at startup lives as long as the process anyway.
        """
        await self.wait_ready()
        gc.collect()
        gc.freeze()

    async def wait_ready(self) -> None:
        """Until every feed has completed its first list (then /readyz reports ready, unless stale)."""
        for feed in self.feeds:
            await feed.listed.wait()
        self.freshness.check()

    async def serve_forever(self) -> None:
        """Until cancelled, or until a feed or the writer fails on a bug (never serve a stale index)."""
        await asyncio.gather(*self._tasks)

    async def __aexit__(self, *exc: object) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.usage.flush(), _FINAL_FLUSH_SECONDS)
        for _, _, runner in self._runners:
            await runner.cleanup()


async def run_verifier(config: VerifierConfig, kube: Kube) -> None:
    """Serve until SIGTERM/SIGINT or cancelled; a crashed feed or writer ends it, so the pod restarts.

    A signal stops it gracefully: the server closes and the uses not yet written are flushed to
    ``lastUsedAt`` (Kubernetes sends SIGTERM when it stops a pod).
    """
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    try:
        async with Verifier(config, kube) as verifier:
            serving = asyncio.create_task(verifier.serve_forever(), name="verifier")
            stopping = asyncio.create_task(stop.wait(), name="verifier stop signal")
            try:
                await asyncio.wait({serving, stopping}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                stopping.cancel()
                serving.cancel()
            if serving.done() and not serving.cancelled():
                serving.result()  # a feed or the writer failed: raise it
            log.info("verifier stopping")
    finally:
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(signum)
