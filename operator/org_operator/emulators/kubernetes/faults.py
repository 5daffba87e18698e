"""Seeded fault injection: which requests the emulated apiserver fails, and how it answers them.

A chaos run needs faults that look like kube-apiserver's own (clients parse and retry them the
same way) and that replay from a seed. ``Faults`` holds an ordered list of :class:`Rule`; each
resource request is offered to the rules in order, and the first rule that matches it *and* wins
its probability roll decides the fault. Every rule draws from its own ``random.Random`` derived
from the seed and the rule's position, so a rule's decisions depend only on the sequence of
requests it matches: unrelated traffic (another client's reads, a watch's reconnect) does not
shift them.

Thread-safety: every method of ``Faults`` takes a lock, so a harness may add, clear and read rules
and the counter from any thread while the emulator's loop consults them.
"""

from __future__ import annotations

import collections
import json
import random
import threading
from dataclasses import dataclass, field
from typing import Final, Literal

from . import errors
from .requestlog import WRITE_VERBS, RequestRecord

Action = Literal["error", "throttle", "slow", "drop", "conflict"]
VERBS: Final = frozenset(
    {"*", "get", "list", "watch", "create", "update", "patch", "delete", "deletecollection"}
)
ACTIONS: Final = frozenset({"error", "throttle", "slow", "drop", "conflict"})
ERROR_STATUSES: Final = frozenset({500, 503})
# What kube-apiserver's own filters and storage say (see the builders below for where each comes from).
INTERNAL_ERROR_CAUSE: Final = "etcdserver: leader changed"
SHUTTING_DOWN: Final = "apiserver is shutting down"
STORAGE_INITIALIZING: Final = "storage is (re)initializing"
FLOW_CONTROL_TEXT: Final = "Too many requests, please try again later.\n"


@dataclass(frozen=True)
class Rule:
    """Which requests to fail, and how.

    Matching (all must hold): ``verb`` is the RBAC verb (``get``, ``list``, ``watch``, ``create``,
    ``update``, ``patch``, ``delete``, ``deletecollection``) or ``*``; ``resource`` is the RBAC
    resource, ``secrets`` or ``orgapitokens/status`` (``orgapitokens`` does not cover its
    ``/status``, as in RBAC), or ``*``; ``user_agent`` is the exact User-Agent, a prefix ending in
    ``*`` (``kopf/*``), or None for every client; ``namespace``/``name`` narrow it to objects.
    Only resource requests are matched (never discovery or ``/version``); ``conflict`` matches
    writes only.

    ``probability``: the chance that a matching request is hit; ``times``: how many injections the
    rule makes before it retires (None: no limit).

    Actions, answered as kube-apiserver v1.32 answers them:
    - ``error``: ``status`` 500 (InternalError, as when etcd loses its leader) or 503
      (ServiceUnavailable "apiserver is shutting down", with ``Retry-After: retry_after``).
    - ``throttle``: 429 TooManyRequests with ``Retry-After`` and ``details.retryAfterSeconds``
      (the Status that storage answers while its cache initializes); ``plain=True`` answers as the
      apiserver's flow control (APF, max-inflight) does instead: ``text/plain``, no Status.
    - ``conflict``: 409 Conflict "the object has been modified" (an optimistic-concurrency loss).
    - ``slow``: wait ``delay`` seconds, then serve normally.
    - ``drop``: close the connection without an answer.
    ``applied=True`` (``error``, ``slow``, ``drop``): serve the request first, committing a write,
    then show the fault: the client cannot tell whether its write happened, as after an etcd
    timeout or a connection lost after the commit.
    """

    verb: str = "*"
    resource: str = "*"
    user_agent: str | None = None
    namespace: str | None = None
    name: str | None = None
    probability: float = 1.0
    times: int | None = None
    action: Action = "error"
    status: int = 500
    retry_after: int = 1
    delay: float = 0.5
    applied: bool = False
    plain: bool = False

    def __post_init__(self) -> None:
        if self.verb not in VERBS:
            raise ValueError(f"unknown verb {self.verb!r}; one of {sorted(VERBS)}")
        if self.action not in ACTIONS:
            raise ValueError(f"unknown action {self.action!r}; one of {sorted(ACTIONS)}")
        if self.action == "error" and self.status not in ERROR_STATUSES:
            raise ValueError(f"an error rule answers 500 or 503, not {self.status}")
        if self.applied and self.action not in ("error", "slow", "drop"):
            raise ValueError(f"a {self.action} is answered before the request is served: applied=True is meaningless")
        if not 0.0 <= self.probability <= 1.0:
            raise ValueError(f"probability {self.probability} is not within [0, 1]")
        if self.times is not None and self.times < 1:
            raise ValueError(f"times must be at least 1 (or None), not {self.times}")
        if self.retry_after < 1 or self.delay < 0:
            raise ValueError("retry_after must be at least 1 and delay not negative")

    def matches(self, record: RequestRecord) -> bool:
        if record.rbac_resource is None:
            return False
        if self.action == "conflict" and not record.is_write:
            return False
        return (
            self.verb in ("*", record.verb)
            and self.resource in ("*", record.rbac_resource)
            and _agent_matches(self.user_agent, record.user_agent)
            and self.namespace in (None, record.namespace)
            and self.name in (None, record.name)
        )


@dataclass(frozen=True)
class Fault:
    """What to do with one request: chosen by :meth:`Faults.pick`, carried out by the emulator."""

    rule: Rule
    kind: str  # the key counted in Faults.injected, e.g. "error:500" or "drop:applied"

    @property
    def applied(self) -> bool:
        return self.rule.applied

    def answer(self, record: RequestRecord, body_name: str | None = None) -> tuple[int, dict[str, str], bytes]:
        """(status, headers, body) of the fault's HTTP answer (not for ``slow`` and ``drop``)."""
        rule = self.rule
        if rule.action == "throttle" and rule.plain:
            headers = {
                "Content-Type": "text/plain; charset=utf-8",
                "X-Content-Type-Options": "nosniff",
                "Retry-After": str(rule.retry_after),
            }
            return 429, headers, FLOW_CONTROL_TEXT.encode()
        headers = {"Content-Type": "application/json"}
        if rule.action == "throttle":
            error = errors.too_many_requests(STORAGE_INITIALIZING, rule.retry_after)
            headers["Retry-After"] = str(rule.retry_after)
        elif rule.action == "conflict":
            name = record.name or body_name or ""
            error = errors.conflict(record.group or "", record.resource or "", name, errors.STALE_OBJECT)
        elif rule.status == 503:
            error = errors.service_unavailable(SHUTTING_DOWN)
            headers["Retry-After"] = str(rule.retry_after)
        else:
            error = errors.internal_error(INTERNAL_ERROR_CAUSE)
        return error.code, headers, json.dumps(error.status, separators=(",", ":")).encode() + b"\n"


@dataclass(eq=False)
class _Armed:
    """A rule in play: its own random stream and the injections it has left."""

    rule: Rule
    rng: random.Random
    left: int | None = field(default=None)


class Faults:
    """The fault schedule of one emulator; thread-safe (see the module docstring)."""

    def __init__(self, seed: int = 0) -> None:
        self._lock = threading.Lock()
        self._seed = seed
        self._added = 0  # rules added since the last seed(): each one's stream is numbered
        self._armed: list[_Armed] = []
        self._injected: collections.Counter[str] = collections.Counter()
        self._watch_rng = random.Random(f"{seed}:watches")

    def seed(self, seed: int) -> None:
        """Restart every random stream from ``seed`` (rules already added are re-derived in order)."""
        with self._lock:
            self._seed = seed
            self._watch_rng = random.Random(f"{seed}:watches")
            for number, armed in enumerate(self._armed):
                armed.rng = random.Random(f"{seed}:{number}")
            self._added = len(self._armed)

    def add(self, rule: Rule) -> Rule:
        """Append a rule (earlier rules are tried first) and return it, e.g. for :meth:`remove`."""
        with self._lock:
            self._armed.append(_Armed(rule, random.Random(f"{self._seed}:{self._added}"), rule.times))
            self._added += 1
        return rule

    def remove(self, rule: Rule) -> None:
        """Retire a rule (every armed copy of it)."""
        with self._lock:
            self._armed = [armed for armed in self._armed if armed.rule is not rule]

    def clear(self) -> None:
        """Retire all rules; the counter of what was injected is kept."""
        with self._lock:
            self._armed.clear()

    @property
    def rules(self) -> list[Rule]:
        with self._lock:
            return [armed.rule for armed in self._armed]

    @property
    def injected(self) -> collections.Counter[str]:
        """A copy of the faults injected so far by kind: ``error:500``, ``error:503``,
        ``throttle:429``, ``conflict:409``, ``slow``, ``drop`` (``:applied`` appended when a write
        was committed first), ``watch-close``, ``expire``."""
        with self._lock:
            return collections.Counter(self._injected)

    def pick(self, record: RequestRecord) -> Fault | None:
        """The fault for this request, if a rule matches and wins its roll; counted as injected."""
        with self._lock:
            for armed in self._armed:
                if not armed.rule.matches(record) or armed.rng.random() >= armed.rule.probability:
                    continue
                if armed.left is not None:
                    armed.left -= 1
                    if armed.left == 0:
                        self._armed.remove(armed)
                kind = _kind(armed.rule, record)
                self._injected[kind] += 1
                return Fault(armed.rule, kind)
        return None

    def roll_watch(self, probability: float) -> bool:
        """One draw of the watch-closing stream (see ``KubernetesEmulator.close_watches``)."""
        with self._lock:
            return self._watch_rng.random() < probability

    def count(self, kind: str, n: int = 1) -> None:
        with self._lock:
            self._injected[kind] += n


def _kind(rule: Rule, record: RequestRecord) -> str:
    status = {"error": str(rule.status), "throttle": "429", "conflict": "409"}.get(rule.action)
    kind = f"{rule.action}:{status}" if status else rule.action
    return f"{kind}:applied" if rule.applied and record.verb in WRITE_VERBS else kind


def _agent_matches(pattern: str | None, user_agent: str) -> bool:
    if pattern is None:
        return True
    if pattern.endswith("*"):
        return user_agent.startswith(pattern[:-1])
    return user_agent == pattern
