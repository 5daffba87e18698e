"""A seeded chaos run: real operator and verifier processes, emulated Kubernetes and Authentik, random
faults, and the invariants of issue 12 checked while it runs and at the end.

The emulators run in this process (threads); the operator replicas (`org-operator run -A`, two, with
leader election) and the verifier (`org-operator verifier -A`) are real processes of the *product*
checkout under test (``Product``: a repository with its own ``.venv``), killed with SIGKILL at random
moments and restarted. Everything random comes from the seed: the workload of each lifecycle and the
fault schedule of each round are drawn before the round starts, so ``--seed N`` replays the same
script (timings on a loaded machine differ, the script does not).

A round: a few organization lifecycles run interleaved while the round's faults fire; then the faults
stop (Authentik up, partitions healed, every process running) and the run waits for convergence
(invariant 7), then checks the stores (2-6). Invariants 1 and 2 are also checked continuously by a
monitor thread that presents every token value read from Secrets to the running verifier's /auth.
"""

from __future__ import annotations

import base64
import contextlib
import faulthandler
import hashlib
import json
import os
import random
import re
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx

from org_operator.emulators.authentik import AuthentikEmulatorThread
from org_operator.emulators.authentik.model import password_matches
from org_operator.emulators.kubernetes import EmulatorThread, Rule

GROUP, VERSION = "org.alien.club", "v1alpha1"
PLAN_LABEL, ENTERPRISE = f"{GROUP}/plan", "enterprise"
PUBLIC_HOST, AK_TOKEN = "auth.acme.example", "ak-chaos-token-5d1f"
GITOPS = "chaos-gitops/1.0"  # the workload's User-Agent: never partitioned, never faulted
LEASE_ENV = {"ORG_OPERATOR_LEASE_DURATION": "3", "ORG_OPERATOR_LEASE_RENEW_DEADLINE": "2",
             "ORG_OPERATOR_LEASE_RETRY_PERIOD": "0.5"}
REPLICAS = ("replica-a", "replica-b")
LATE_WRITE_PENDING = "LateWritePending"
# The product's annotations (operator/org_operator/api/constants.py; the harness never imports the operator).
ROTATE_ANNOTATION = f"{GROUP}/rotate"
RESET_ANNOTATION = f"{GROUP}/password-reset-requested-at"
FORCED_OUTCOMES = ("Completed", "EmailUnconfirmed", "NoEmailUserLocked")
# Rotation settings the workload's tokens get (drawn per token from the seed), within the CRD's rules:
# every >= 1m, overlap >= 10s, overlap < every, every < the expiry (90d by default).
ROTATION_EVERY = ("1m", "2m", "10m")
ROTATION_OVERLAP = ("10s", "15s", "30s")
VERIFIER_SETTLE = 12.0  # a verifier whose requests to the API server are faulted may serve a stale view this
# long: the stale bound (10 s) plus a check; consumers' refusals in that window are counted, not violations
VERIFIER_CATCH_UP = 3.0  # after its watches were closed or expired (it resumes or re-lists), or a restart


def wall_time(stamp: Any) -> float | None:
    """An RFC 3339 status time as a Unix timestamp (None if absent or unreadable)."""
    if not isinstance(stamp, str) or not stamp:
        return None
    try:
        return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def token_hash(plaintext: str) -> str:
    return hashlib.sha256(plaintext.encode("ascii")).hexdigest()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass(frozen=True)
class Product:
    """The checkout under test: its ``crds/`` and its ``.venv``'s console script; older CLIs differ."""

    root: Path

    @property
    def cli(self) -> str:
        """Its own venv's script; without one (CI installs into the running venv), the one next to us."""
        script = self.root / ".venv" / "bin" / "org-operator"
        return str(script if script.exists() else Path(sys.executable).parent / "org-operator")

    @property
    def crds(self) -> Path:
        return self.root / "crds"

    def peering(self) -> bool:
        """True for the kopf-peering generation (``run --priority``), before the Lease."""
        help_text = subprocess.run([self.cli, "run", "--help"], capture_output=True, text=True, check=True).stdout
        return "--priority" in help_text

    def commit(self) -> str:
        return subprocess.run(["git", "-C", str(self.root), "rev-parse", "--short", "HEAD"],
                              capture_output=True, text=True).stdout.strip()


@dataclass
class Options:
    seed: int = 1
    lifecycles: int = 12
    per_round: int = 6          # lifecycles per round (a round ends with a quiet convergence check)
    concurrency: int = 3        # lifecycles interleaved at once
    outage: float = 60.0        # seconds of the Authentik outage (one per run, in a round drawn from the seed)
    grace: float = 1.0          # invariant 1: a dead token may verify at most this long after the change
    converge_within: float = 30.0
    stall: tuple[float, float] = (15.0, 30.0)  # ak_timeout: Authentik holds a request this long, then applies it
    authentik_timeout: float = 10.0  # the operator's Authentik timeout (its default): longer stalls land late

    @property
    def late_write_window(self) -> float:
        """Above the longest stall. A deletion within a window of a write that got no answer, or of a new
        leader's term, keeps its finalizer that long (Ready=False, LateWritePending)."""
        return self.stall[1] + 1.0
    step_pause: float = 0.35    # upper bound of the random pause between workload steps
    kube_faults: bool = True    # use the emulator's Faults API when the emulator has it
    logs: Path = Path("chaos-logs")


@dataclass
class Violation:
    invariant: int
    message: str
    at: float
    key: str


class History:
    """Everything that happened, in order, with the time since the start: what a replay is read against."""

    def __init__(self) -> None:
        self.start = time.monotonic()
        self.lines: list[str] = []
        self._lock = threading.Lock()

    def now(self) -> float:
        return time.monotonic() - self.start

    def add(self, line: str) -> None:
        with self._lock:
            self.lines.append(f"{self.now():8.2f} {line}")


# The product processes ----------------------------------------------------------------------------


class Processes:
    """The operator replicas and the verifier: started, SIGKILLed and restarted; one log file per spawn."""

    def __init__(self, product: Product, kubeconfig: Path, logs: Path, env: dict[str, str]) -> None:
        self.product, self.kubeconfig, self.logs, self.env = product, kubeconfig, logs, env
        self.peering = product.peering()
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self.spawns: Counter[str] = Counter()
        self.verifier_port = free_port()
        self.metrics_ports = {name: free_port() for name in REPLICAS}
        self.log_files: list[Path] = []

    def _spawn(self, name: str, argv: list[str]) -> None:
        self.spawns[name] += 1
        path = self.logs / f"{name}.{self.spawns[name]}.log"
        self.log_files.append(path)
        env = {**os.environ, **self.env, "KUBECONFIG": str(self.kubeconfig), "ORG_OPERATOR_INSTANCE": name}
        env.pop("VIRTUAL_ENV", None)
        with path.open("wb") as log:
            self.procs[name] = subprocess.Popen([self.product.cli, *argv], env=env, stdout=log,
                                                stderr=subprocess.STDOUT, cwd=self.logs)

    def start_replica(self, name: str) -> None:
        argv = ["run", "-A", "-v", "--metrics-port", str(self.metrics_ports[name])]
        if self.peering:  # the older generation: kopf peering, the highest priority is the active one
            argv += ["--priority", str(20 if name == REPLICAS[0] else 10)]
        self._spawn(name, argv)

    def start_verifier(self) -> None:
        self._spawn("verifier", ["verifier", "-A", "-v", "--port", str(self.verifier_port)])

    def alive(self, name: str) -> bool:
        proc = self.procs.get(name)
        return proc is not None and proc.poll() is None

    def kill(self, name: str) -> None:
        proc = self.procs.get(name)
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=10)

    def stop_all(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.terminate()
        for proc in self.procs.values():
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


# The workload ---------------------------------------------------------------------------------------

OPS = ["reapply", "reapply", "sa_toggle", "mu_toggle", "mu_toggle", "lose_secret", "lose_secret",
       "plan_off_on", "new_token", "delete_token", "recreate_mu", "recreate_sa",
       "rotate", "rotate", "revoke", "force_reset"]


def held_for_late_writes(body: dict[str, Any]) -> bool:
    """A deletion the operator holds, saying why: a write to Authentik may still land (bounded by the window)."""
    conditions = (body.get("status") or {}).get("conditions") or []
    return any(c.get("type") == "Ready" and c.get("reason") == LATE_WRITE_PENDING for c in conditions)


def lifecycle_script(seed: int, index: int) -> list[tuple[str, Any]]:
    """One organization's life, drawn from (seed, index) alone: creation, random changes, maybe deletion."""
    rng = random.Random(f"{seed}/lifecycle/{index}")
    script: list[tuple[str, Any]] = [("create", rng.randint(1, 2))]
    for _ in range(rng.randint(4, 9)):
        script.append((rng.choice(OPS), rng.random()))
    if rng.random() < 0.5:
        script.append(("delete_all", None))
    return script


@dataclass
class Org:
    """What the workload has declared for one organization (its GitOps repository)."""

    index: int
    script: list[tuple[str, Any]]
    ns: str = ""
    sa_active: bool = True
    sa_email: str = ""
    mu_active: bool = True
    tokens: list[str] = field(default_factory=list)
    revoked: set[str] = field(default_factory=set)   # spec.revoked: true (one-way; GitOps keeps declaring it)
    ended: set[str] = field(default_factory=set)     # revoked, or their account deactivated or replaced
    next_token: int = 0
    plan: bool = True
    mu_exists: bool = True
    deleted: bool = False
    not_before: float = 0.0
    refused_since: float | None = None  # when the API began refusing the current step (monotonic)

    def live_tokens(self) -> list[str]:
        """Tokens that may still verify (rotate and revoke pick among these when there are any)."""
        return [name for name in self.tokens if name not in self.ended] or self.tokens

    @property
    def email(self) -> str:
        return f"jane.{self.ns}@acme.example"


# Invariant bookkeeping ------------------------------------------------------------------------------


@dataclass
class Value:
    """One token plaintext seen in a Secret, and since when it must no longer verify (None: alive)."""

    plaintext: str
    ns: str
    name: str
    uid: str
    account: str
    first_seen: float
    confirmed: bool = False        # the token's status has recorded this value's hash
    confirmed_at: float | None = None  # when the monitor first saw the status record it as current
    previous_until: float | None = None  # the status's previousValidUntil while it is the previous value
    dead_since: float | None = None
    dead_why: str = ""

    def kill(self, at: float, why: str) -> None:
        if self.dead_since is None or at < self.dead_since:
            self.dead_since, self.dead_why = at, why


@dataclass
class ForceRequest:
    """One forced password reset the workload requested (annotation ``force:<id>`` on an OrgManagedUser)."""

    request: str
    ns: str
    uid: str                        # the OrgManagedUser object it was made on
    at: float
    user_pk: int | None = None      # the Authentik user seeded with a known password and a session, if any
    password: str = ""
    session: str = ""
    outcomes: set[tuple[str, str]] = field(default_factory=set)  # (outcome, completedAt) seen in the status
    store_checked: bool = False


@dataclass
class Consumer:
    """A pipeline using one token: it presents the value it last read from the Secret, and switches to a
    new value some time after the Secret changed (a mounted file refreshed, then re-read)."""

    digest: str
    plaintext: str
    read_at: float
    pending: tuple[str, str, float] | None = None  # (digest, plaintext, when it switches)
    next_at: float = 0.0


class Run:
    """One chaos run: emulators, processes, workload, fault schedule, monitor and checks."""

    def __init__(self, product: Product, options: Options) -> None:
        self.product, self.o = product, options
        self.history = History()
        self.violations: list[Violation] = []
        self.repeats: Counter[str] = Counter()
        self.faults: Counter[str] = Counter()
        self.schedule: list[str] = []
        self.kills = 0
        self.leader_changes = 0
        self.checks = 0
        self.converge_times: list[float] = []
        self.values: dict[str, Value] = {}      # plaintext hash -> Value
        self.dead_tokens: dict[str, tuple[float, str]] = {}  # token uid -> (since, why): every value dies
        self.mu_timeline: dict[str, list[tuple[float, bool | None]]] = {}  # email -> (time, spec.active or
        # None: deleted, which is no deactivation: a reconcile started before it may still finish)
        self.reset_requests: Counter[str] = Counter()
        self.force_requests: dict[str, ForceRequest] = {}    # request id -> what the workload asked
        self.forced_pks: dict[str, set[int]] = {}   # request id -> Authentik user pks its records name
        self.rotate_requests = 0
        self.revocations = 0
        self.rotations: dict[str, int] = {}   # token uid -> the highest status.rotations seen
        self.consumers: dict[str, Consumer] = {}  # token uid -> its pipeline
        self.consumer_stats: Counter[str] = Counter()
        self.verifier_settled_at = 0.0     # history time after which the verifier's view must be current
        self.lock = threading.Lock()
        self.stop_monitor = threading.Event()
        self.last_holder: str | None = None
        self.ak_seen = 0
        self.done_lifecycles = 0

    # --- plumbing ------------------------------------------------------------------------------------

    def violate(self, invariant: int, message: str, key: str | None = None) -> None:
        """Record a violation once per ``key`` (default: the message); repeats are only counted."""
        with self.lock:
            key = key or re.sub(r"^round \d+: ", "", message)  # the same finding in a later round is a repeat
            self.repeats[key] += 1
            if self.repeats[key] > 1:
                return
            self.violations.append(Violation(invariant, message, self.history.now(), key))
        self.history.add(f"VIOLATION {invariant}: {message}")

    def url(self, plural: str, ns: str | None = None, name: str | None = None) -> str:
        base = "/api/v1" if plural in ("secrets", "namespaces", "events") else f"/apis/{GROUP}/{VERSION}"
        path = f"{base}/namespaces/{ns}/{plural}" if ns else f"{base}/{plural}"
        return f"{path}/{name}" if name else path

    def objects(self, plural: str) -> list[dict[str, Any]]:
        group = "" if plural in ("secrets", "namespaces", "events") else GROUP
        return self.api.objects(group, plural)

    def request(self, method: str, url: str, body: Any = None, *, content_type: str | None = None,
                ok: tuple[int, ...] = (200, 201)) -> httpx.Response:
        headers = {"Content-Type": content_type} if content_type else {}
        response = self.http.request(method, url, json=body, headers=headers)
        if response.status_code not in ok:
            self.history.add(f"gitops {method} {url} -> {response.status_code} {response.text[:160]}")
        return response

    def merge(self, url: str, body: Any, ok: tuple[int, ...] = (200,)) -> httpx.Response:
        return self.request("PATCH", url, body, content_type="application/merge-patch+json", ok=ok)

    # --- the run ------------------------------------------------------------------------------------

    def execute(self) -> dict[str, Any]:
        logs = self.o.logs.resolve()
        logs.mkdir(parents=True, exist_ok=True)
        self.stacks = (logs / "stacks.txt").open("w")
        started = time.monotonic()
        peering = self.product.peering()
        with EmulatorThread(crds=[self.product.crds], kopf_peering=peering) as api, \
                AuthentikEmulatorThread(token=AK_TOKEN) as authentik, \
                httpx.Client(base_url=api.url, timeout=15, headers={"User-Agent": GITOPS}) as http, \
                httpx.Client(timeout=5) as probe:
            self.api, self.authentik, self.http, self.probe = api, authentik, http, probe
            api.faults.seed(self.o.seed)
            authentik.store.set_recovery_flow("default-recovery-flow", domain=PUBLIC_HOST)
            env = {**LEASE_ENV, "ORG_OPERATOR_AUTHENTIK_URL": authentik.url, "ORG_OPERATOR_AUTHENTIK_TOKEN": AK_TOKEN,
                   "ORG_OPERATOR_AUTHENTIK_PUBLIC_HOST": PUBLIC_HOST, "ORG_OPERATOR_RESYNC_INTERVAL": "2",
                   "ORG_OPERATOR_ACCOUNT_STATUS_DELAY": "0.2",
                   "ORG_OPERATOR_AUTHENTIK_TIMEOUT": str(self.o.authentik_timeout),
                   "ORG_OPERATOR_LATE_WRITE_WINDOW": str(self.o.late_write_window)}
            self.procs = Processes(self.product, api.write_kubeconfig(logs / "kubeconfig"), logs, env)
            if peering:  # as the older manifests installed it: the replicas wait for it before serving
                self.request("POST", "/apis/kopf.dev/v1/clusterkopfpeerings", {
                    "apiVersion": "kopf.dev/v1", "kind": "ClusterKopfPeering", "metadata": {"name": "org-operator"}})
            for name in REPLICAS:
                self.procs.start_replica(name)
            self.procs.start_verifier()
            monitor = threading.Thread(target=self.monitor, name="chaos-monitor", daemon=True)
            monitor.start()
            try:
                self.rounds()
            finally:
                self.stop_monitor.set()
                monitor.join(timeout=30)
                self.final_checks()
                self.procs.stop_all()
                faulthandler.cancel_dump_traceback_later()
        return self.summary(time.monotonic() - started)

    def rounds(self) -> None:
        outage_round = random.Random(f"{self.o.seed}/outage").randrange(max(1, self.o.lifecycles // self.o.per_round))
        index, round_no = 0, 0
        while index < self.o.lifecycles:
            count = min(self.o.per_round, self.o.lifecycles - index)
            orgs = [Org(i, lifecycle_script(self.o.seed, i)) for i in range(index, index + count)]
            schedule = self.draw_schedule(round_no, outage=round_no == outage_round)
            self.history.add(f"round {round_no}: lifecycles {index}..{index + count - 1}, faults {schedule}")
            self.schedule.append(f"round {round_no}: {schedule}")
            self.run_round(orgs, schedule, round_no)
            index += count
            round_no += 1
        self.finish_deletions(round_no - 1)

    def draw_schedule(self, round_no: int, *, outage: bool) -> list[tuple[float, str, float]]:
        """The round's faults as (fraction of the round's workload steps, kind, parameter)."""
        rng = random.Random(f"{self.o.seed}/faults/{round_no}")
        kinds = ["kill_leader", "kill_leader", "kill_standby", "kill_verifier", "ak_5xx", "ak_timeout",
                 "k8s_partition_leader"]
        if self.o.kube_faults:
            kinds += ["k8s_error", "k8s_throttle", "k8s_conflict", "k8s_slow", "k8s_drop", "k8s_close_watches",
                      "k8s_expire"]
        faults = [(rng.random(), rng.choice(kinds), rng.random()) for _ in range(rng.randint(3, 6))]
        faults += [(rng.random(), "kill_leader", rng.random()) for _ in range(rng.randint(1, 2))]
        if outage:
            faults.append((rng.random() * 0.5, "ak_outage", self.o.outage))
        return sorted(faults)

    def run_round(self, orgs: list[Org], schedule: list[tuple[float, str, float]], round_no: int) -> None:
        rng = random.Random(f"{self.o.seed}/steps/{round_no}")
        total = sum(len(org.script) for org in orgs)
        pending = list(schedule)
        active: list[Org] = []
        queue = list(orgs)
        step = 0
        self.ends: list[tuple[float, Callable[[], None]]] = []
        while queue or active:
            while queue and len(active) < self.o.concurrency:
                active.append(queue.pop(0))
            while pending and pending[0][0] * total <= step:
                _, kind, param = pending.pop(0)
                self.fire(kind, param, rng)
            self.end_due_faults()
            ready = [org for org in active if org.not_before <= time.monotonic()]
            if not ready:
                time.sleep(0.05)
                continue
            org = rng.choice(ready)
            op, arg = org.script.pop(0)
            faulthandler.dump_traceback_later(240, file=self.stacks)  # no step for 4 minutes: say where it hangs
            if not self.do(org, op, arg):
                org.refused_since = org.refused_since or time.monotonic()
                if time.monotonic() - org.refused_since < 120:
                    org.script.insert(0, (op, arg))  # the API refused for now (e.g. a lock not applied yet)
                    org.not_before = time.monotonic() + 0.5
                else:  # the lock it waits for never came: the operator does not act; say so, move on
                    self.violate(7, f"{org.ns}: step {op} refused by the API for 120 s (the operator never applied "
                                    "the state it waits for)")
                    org.refused_since = None
            else:
                org.refused_since = None
            step += 1
            if not org.script:
                active.remove(org)
                self.done_lifecycles += 1
            time.sleep(rng.uniform(0, self.o.step_pause))
        for _, kind, param in pending:
            self.fire(kind, param, rng)
        self.quiesce()
        self.converge(round_no)

    # --- workload steps ------------------------------------------------------------------------------

    def set_mu(self, org: Org, active: bool | None) -> None:
        with self.lock:
            self.mu_timeline.setdefault(org.email, []).append((self.history.now(), active))

    def apply(self, org: Org) -> None:
        """GitOps: apply every declared object again, unchanged (Argo CD's sync)."""
        for plural, name, spec in self.declared(org):
            self.merge(self.url(plural, org.ns, name), {"spec": spec})

    def declared(self, org: Org) -> list[tuple[str, str, dict[str, Any]]]:
        items: list[tuple[str, str, dict[str, Any]]] = [
            ("orgserviceaccounts", "bot", {"email": org.sa_email, "active": org.sa_active})]
        if org.mu_exists:
            items.append(("orgmanagedusers", "jane", {"email": org.email, "firstName": "Jane", "lastName": "Doe",
                                                      "deletionPolicy": "Delete", "active": org.mu_active}))
        items += [("orgapitokens", name, self.token_spec(org, name)) for name in org.tokens]
        return items

    def token_spec(self, org: Org, name: str) -> dict[str, Any]:
        """A token's declared spec: automatic rotation drawn from (seed, lifecycle, name); revoked once set."""
        rng = random.Random(f"{self.o.seed}/rotation/{org.index}/{name}")
        rotation = {"every": rng.choice(ROTATION_EVERY), "overlap": rng.choice(ROTATION_OVERLAP)}
        spec: dict[str, Any] = {"serviceAccountName": "bot", "rotation": rotation}
        if name in org.revoked:
            spec["revoked"] = True
        return spec

    def create(self, org: Org, plural: str, name: str, spec: dict[str, Any]) -> None:
        kind = {"orgserviceaccounts": "OrgServiceAccount", "orgmanagedusers": "OrgManagedUser",
                "orgapitokens": "OrgApiToken"}[plural]
        body = {"apiVersion": f"{GROUP}/{VERSION}", "kind": kind, "metadata": {"name": name, "namespace": org.ns},
                "spec": spec}
        self.request("POST", self.url(plural, org.ns), body)

    def do(self, org: Org, op: str, arg: Any) -> bool:
        """One workload step; False if the API refused it for now (it is retried later)."""
        now = self.history.now()
        if op == "create":
            org.ns = f"org-{org.index}"
            org.tokens = [f"t{i}" for i in range(arg)]
            org.next_token = arg
            org.sa_email = f"bot@{org.ns}.example"
            self.request("POST", "/api/v1/namespaces", {"apiVersion": "v1", "kind": "Namespace", "metadata": {
                "name": org.ns, "labels": {PLAN_LABEL: ENTERPRISE}}})
            self.set_mu(org, True)
            for plural, name, spec in self.declared(org):
                self.create(org, plural, name, spec)
        elif org.deleted:
            return True
        elif op == "reapply":
            self.apply(org)
        elif op == "sa_toggle":
            org.sa_active = not org.sa_active
            response = self.merge(self.url("orgserviceaccounts", org.ns, "bot"), {"spec": {"active": org.sa_active}},
                                  ok=(200, 422))
            if response.status_code == 422:
                org.sa_active = not org.sa_active
                return False
            if not org.sa_active:
                self.kill_account(org.ns, "bot", now, "service account deactivated")
                org.ended |= set(org.tokens)
        elif op == "mu_toggle" and org.mu_exists:
            org.mu_active = not org.mu_active
            response = self.merge(self.url("orgmanagedusers", org.ns, "jane"), {"spec": {"active": org.mu_active}},
                                  ok=(200, 422))
            if response.status_code == 422:
                org.mu_active = not org.mu_active
                return False
            self.set_mu(org, org.mu_active)
        elif op == "lose_secret" and org.tokens:
            name = org.tokens[int(arg * len(org.tokens))]
            self.request("DELETE", self.url("secrets", org.ns, name), ok=(200, 404))
        elif op == "plan_off_on":
            org.plan = not org.plan
            labels = {PLAN_LABEL: ENTERPRISE if org.plan else None}
            self.merge(f"/api/v1/namespaces/{org.ns}", {"metadata": {"labels": labels}})
            if not org.plan:  # restored later in this lifecycle
                org.script.insert(min(len(org.script), 2), ("plan_off_on", arg))
        elif op == "new_token":
            name = f"t{org.next_token}"
            org.next_token += 1
            org.tokens.append(name)
            self.create(org, "orgapitokens", name, self.token_spec(org, name))
        elif op == "delete_token" and org.tokens:
            name = org.tokens.pop(int(arg * len(org.tokens)))
            response = self.request("DELETE", self.url("orgapitokens", org.ns, name), ok=(200, 404))
            if response.status_code == 200:
                self.kill_token(response.json().get("metadata", {}).get("uid", ""), now, "token deleted")
        elif op == "recreate_mu" and org.mu_exists:
            self.request("DELETE", self.url("orgmanagedusers", org.ns, "jane"), ok=(200, 404))
            self.set_mu(org, None)
            if not self.wait(lambda: self.get("orgmanagedusers", org.ns, "jane") is None, 40):
                self.history.add(f"{org.ns}/jane: deletion still pending after 40 s")
                org.mu_exists = False  # left to the end checks
                return True
            self.create(org, "orgmanagedusers", "jane", self.declared(org)[1][2])
            self.set_mu(org, org.mu_active)
        elif op == "recreate_sa":  # the same name again, with the same email or another one
            self.request("DELETE", self.url("orgserviceaccounts", org.ns, "bot"), ok=(200, 404))
            self.kill_account(org.ns, "bot", now, "service account deleted")
            org.ended |= set(org.tokens)
            if not self.wait(lambda: self.get("orgserviceaccounts", org.ns, "bot") is None, 40):
                self.history.add(f"{org.ns}/bot: deletion still pending after 40 s")
                return True
            org.sa_email = f"bot{'' if arg < 0.5 else int(arg * 100)}@{org.ns}.example"
            self.create(org, "orgserviceaccounts", "bot", self.declared(org)[0][2])
        elif op == "rotate" and org.tokens:  # rotate now: a new value of the annotation
            live = org.live_tokens()
            name = live[int(arg * len(live))]
            self.rotate_requests += 1
            request = f"chaos-{self.rotate_requests}"
            response = self.merge(self.url("orgapitokens", org.ns, name),
                                  {"metadata": {"annotations": {ROTATE_ANNOTATION: request}}}, ok=(200, 404))
            self.history.add(f"{org.ns}/{name}: rotate requested ({request}) -> {response.status_code}")
            # this organization's next step waits a little: the new value reaches the Secret (1 s) and the
            # pipelines switch while the previous value still verifies
            org.not_before = time.monotonic() + 2 + 3 * arg
        elif op == "revoke" and set(org.tokens) - org.revoked:
            live = [name for name in org.live_tokens() if name not in org.revoked]
            name = live[int(arg * len(live))]
            response = self.merge(self.url("orgapitokens", org.ns, name), {"spec": {"revoked": True}}, ok=(200, 404))
            if response.status_code == 200:
                org.revoked.add(name)
                org.ended.add(name)
                self.revocations += 1
                # invariant 1 counts from the moment the API server accepted the patch
                self.kill_token(response.json()["metadata"]["uid"], self.history.now(), "spec.revoked set")
        elif op == "force_reset" and org.mu_exists:
            self.force_reset(org)
        elif op == "delete_all":
            org.deleted = True
            for name in org.tokens:
                self.request("DELETE", self.url("orgapitokens", org.ns, name), ok=(200, 404))
            org.tokens = []
            self.request("DELETE", self.url("orgserviceaccounts", org.ns, "bot"), ok=(200, 404))
            self.kill_account(org.ns, "bot", now, "service account deleted")
            if org.mu_exists:
                self.request("DELETE", self.url("orgmanagedusers", org.ns, "jane"), ok=(200, 404))
                self.set_mu(org, None)
                org.mu_exists = False
        self.history.add(f"step {org.ns or org.index} {op}")
        return True

    def force_reset(self, org: Org) -> None:
        """`org-operator reset-password --force`: the annotation ``force:<id>``. The Authentik user (if it
        exists yet) first gets a known password and a session, so that a Completed outcome can be checked."""
        request = f"force:chaos-{len(self.force_requests) + 1}"
        user = self.authentik.store.user_by_username(org.email)
        password, session = "", ""
        if user is not None:
            password = f"chaos-pw-{len(self.force_requests) + 1}-{random.Random(request).getrandbits(32):08x}"
            with contextlib.suppress(KeyError):  # deleted meanwhile
                self.authentik.store.set_password(user.pk, password)
                session = self.authentik.store.add_session(user.pk).uuid
        response = self.merge(self.url("orgmanagedusers", org.ns, "jane"),
                              {"metadata": {"annotations": {RESET_ANNOTATION: request}}}, ok=(200, 404))
        if response.status_code == 200:
            with self.lock:
                self.force_requests[request] = ForceRequest(
                    request, org.ns, response.json()["metadata"]["uid"], self.history.now(),
                    user.pk if user is not None and session else None, password, session)
        self.history.add(f"{org.ns}/jane: forced reset {request} (user pk {user.pk if user else None}) "
                         f"-> {response.status_code}")

    def get(self, plural: str, ns: str, name: str) -> dict[str, Any] | None:
        response = self.http.get(self.url(plural, ns, name))
        return response.json() if response.status_code == 200 else None

    def wait(self, check: Callable[[], bool], timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.end_due_faults()
            if check():
                return True
            time.sleep(0.2)
        return False

    def kill_token(self, uid: str, at: float, why: str) -> None:
        with self.lock:
            self.dead_tokens.setdefault(uid, (at, why))
            for value in self.values.values():
                if value.uid == uid:
                    value.kill(at, why)

    def kill_account(self, ns: str, account: str, at: float, why: str) -> None:
        with self.lock:
            for value in self.values.values():
                if value.ns == ns and value.account == account:
                    value.kill(at, why)
                    self.dead_tokens.setdefault(value.uid, (at, why))

    # --- faults ---------------------------------------------------------------------------------------

    def holder(self) -> str | None:
        """Who leads: the Lease's holder identity (``<replica>_<random>``, new per process), or (kopf
        peering) the highest-priority live replica."""
        if self.procs.peering:
            return next((name for name in REPLICAS if self.procs.alive(name)), None)
        for lease in self.api.objects("coordination.k8s.io", "leases"):
            if lease["metadata"]["name"] == "org-operator":
                return (lease.get("spec") or {}).get("holderIdentity") or None
        return None

    def after(self, seconds: float, action: Callable[[], None]) -> None:
        self.ends.append((time.monotonic() + seconds, action))

    def end_due_faults(self) -> None:
        due = [item for item in self.ends if item[0] <= time.monotonic()]
        self.ends = [item for item in self.ends if item[0] > time.monotonic()]
        for _, action in due:
            action()

    def fire(self, kind: str, param: float, rng: random.Random) -> None:
        self.faults[kind] += 1
        self.history.add(f"fault {kind} ({param:.2f})")
        if kind in ("kill_leader", "kill_standby"):
            leader = (self.holder() or "").partition("_")[0] or None
            victim = leader if kind == "kill_leader" else next((r for r in REPLICAS if r != leader), None)
            if victim is None:
                victim = REPLICAS[int(param * 2)]
            self.kills += 1
            self.procs.kill(victim)
            self.history.add(f"killed {victim} (leader was {leader})")
            self.after(param * 3, lambda: self.restart(victim))
        elif kind == "kill_verifier":
            self.procs.kill("verifier")
            self.verifier_settled_at = float("inf")  # until restarted
            self.history.add("killed verifier")
            self.after(param * 2, lambda: self.restart("verifier"))
        elif kind == "ak_5xx":
            self.authentik.faults.fail(rng.choice([500, 502, 503]), times=1 + int(param * 5))
        elif kind == "ak_timeout":
            low, high = self.o.stall
            self.authentik.faults.delay(low + param * (high - low), times=1 + int(param * 2),
                                        method=rng.choice([None, "POST", "PATCH"]))
        elif kind == "ak_outage":
            self.authentik.down(refuse=rng.random() < 0.5)
            self.after(param, self.authentik_up)
        elif kind == "k8s_partition_leader":
            leader = (self.holder() or "").partition("_")[0]
            if leader:
                agent = f"org-operator/{leader}"
                self.api.call(self.api.emulator.partition, agent)
                self.after(1 + param * 5, lambda: self.api.call(self.api.emulator.heal))
        else:
            self.kube_fault(kind, param)

    def kube_fault(self, kind: str, param: float) -> None:
        """Kubernetes API faults through the emulator's seeded Faults (issue 12's emulator half): a
        burst against one client (an operator replica, sometimes the verifier), retired after 5 s."""
        if kind in ("k8s_close_watches", "k8s_expire"):  # the verifier's watches too
            self.verifier_settled_at = max(self.verifier_settled_at, self.history.now() + VERIFIER_CATCH_UP)
        if kind == "k8s_close_watches":
            self.api.close_watches(0.5 + param / 2)
            return
        if kind == "k8s_expire":
            self.api.expire_history()
            return
        agent = [*(f"org-operator/{name}" for name in REPLICAS), "org-operator-verifier"][int(param * 3)]
        if agent == "org-operator-verifier":
            self.verifier_settled_at = max(self.verifier_settled_at, self.history.now() + 5 + VERIFIER_SETTLE)
        resource = ["*", "orgapitokens", "orgapitokens/status", "secrets", "orgmanagedusers/status"][int(param * 5)]
        action: dict[str, Any] = {
            "k8s_error": {"action": "error", "status": 500 if param < 0.5 else 503, "applied": param < 0.25},
            "k8s_throttle": {"action": "throttle"},
            "k8s_conflict": {"action": "conflict"},
            "k8s_slow": {"action": "slow", "delay": 0.5 + 2 * param},
            "k8s_drop": {"action": "drop", "applied": param < 0.5},
        }[kind]
        rule = self.api.faults.add(Rule(resource=resource, user_agent=agent, probability=0.3,
                                        times=1 + int(param * 6), **action))
        self.history.add(f"kubernetes fault {rule}")
        self.after(5, lambda: self.api.faults.remove(rule))

    def authentik_up(self) -> None:
        self.authentik.up()
        self.history.add("authentik up")

    def restart(self, name: str) -> None:
        if not self.procs.alive(name):
            if name == "verifier":
                self.procs.start_verifier()
                before = self.verifier_settled_at if self.verifier_settled_at != float("inf") else 0.0
                self.verifier_settled_at = max(before, self.history.now() + VERIFIER_CATCH_UP)
            else:
                self.procs.start_replica(name)
            self.history.add(f"restarted {name}")

    def quiesce(self) -> None:
        """Stop every fault now: the convergence clock starts here."""
        for _, action in sorted(self.ends, key=lambda item: item[0]):
            action()
        self.ends = []
        self.authentik.faults.clear()
        self.authentik.up()
        self.api.call(self.api.emulator.heal)
        self.api.faults.clear()
        for name in (*REPLICAS, "verifier"):
            self.restart(name)
        self.history.add("faults stopped")

    # --- the monitor: invariants 1 and 2 while it runs -----------------------------------------------

    def monitor(self) -> None:
        rng = random.Random(f"{self.o.seed}/monitor")
        while not self.stop_monitor.is_set():
            try:
                self.observe()
                self.probe_values(rng)
                self.consume(rng)
                self.observe_forced_resets()
                self.check_authentik_writes()
            except Exception as error:  # noqa: BLE001 - the monitor must outlive a transient failure
                self.history.add(f"monitor: {type(error).__name__}: {error}")
            self.stop_monitor.wait(0.25)

    def observe(self) -> None:
        """Read the stores: new token values in Secrets, statuses that retire or revoke values, the Lease."""
        now = self.history.now()
        holder = self.holder()
        if holder is not None and holder != self.last_holder:
            if self.last_holder is not None:
                self.leader_changes += 1
            self.history.add(f"leader {holder}")
            self.last_holder = holder
        tokens = {t["metadata"]["uid"]: t for t in self.objects("orgapitokens")}
        accounts = {(a["metadata"]["namespace"], a["metadata"]["name"]): a for a in self.objects("orgserviceaccounts")}
        with self.lock:
            for secret in self.objects("secrets"):
                owners = secret["metadata"].get("ownerReferences") or []
                raw = (secret.get("data") or {}).get("token")
                if not owners or raw is None:
                    continue
                plaintext = base64.b64decode(raw).decode()
                digest = token_hash(plaintext)
                if digest in self.values:
                    self.secret_holds_known(self.values[digest], tokens.get(owners[0]["uid"]))
                    continue
                uid = owners[0]["uid"]
                token = tokens.get(uid)
                if token is None:
                    continue
                value = Value(plaintext, token["metadata"]["namespace"], token["metadata"]["name"], uid,
                              token["spec"]["serviceAccountName"], now)
                status = token.get("status") or {}
                rotated = status.get("tokenHash") == digest
                for old, other in self.values.items():  # invariant 2: a new value retires the ones before,
                    # except the one a rotation keeps as the previous value (it ends at previousValidUntil)
                    if other.uid == uid and not (rotated and status.get("previousTokenHash") == old):
                        other.kill(now, f"superseded by {digest[:8]} in the Secret")
                if uid in self.dead_tokens:
                    value.kill(*self.dead_tokens[uid])
                self.values[digest] = value
                rotation = f" (rotation {status['rotations']})" if rotated and status.get("rotations") else ""
                self.history.add(f"value {digest[:8]} of {value.ns}/{value.name} seen in its Secret{rotation}")
            for uid, token in tokens.items():
                rotations = int((token.get("status") or {}).get("rotations") or 0)
                if rotations > self.rotations.get(uid, 0):
                    self.rotations[uid] = rotations
            offset = time.time() - now  # status times are wall-clock; the history's are since the start
            for digest, value in self.values.items():
                token = tokens.get(value.uid)
                status = (token or {}).get("status") or {}
                if status.get("tokenHash") == digest:
                    if not value.confirmed:
                        value.confirmed, value.confirmed_at = True, now
                elif status.get("previousTokenHash") == digest:  # invariant 1: ends at previousValidUntil
                    value.confirmed = True
                    until = wall_time(status.get("previousValidUntil"))
                    if until is None:
                        value.kill(now, "previous value without previousValidUntil")
                    elif until - offset <= now:
                        value.kill(until - offset, f"previous value ended at previousValidUntil "
                                                   f"({status.get('previousEndReason')})")
                    else:
                        value.previous_until = until - offset
                elif value.confirmed and token is not None:
                    value.kill(now, "status now records another value" if status.get("tokenHash")
                               else "status now records no value")
                if token is not None and status.get("phase") in ("Revoked", "Expired"):
                    value.kill(now, f"operator reported {status['phase']}")
                account = accounts.get((value.ns, value.account))
                if account is not None and ((account.get("status") or {}).get("phase") == "Locked"):
                    value.kill(now, "account shown Locked")

    def secret_holds_known(self, value: Value, token: dict[str, Any] | None) -> None:
        """Invariant 2: a Secret never goes back to a value a newer one replaced (a third value). Holding
        the previous value after its overlap (a rotation interrupted for longer than the overlap) is
        counted; convergence (7) requires the current value there once the faults stop."""
        if value.dead_since is None or token is None or (token.get("status") or {}).get("phase") != "Active":
            return
        if value.dead_why.startswith("superseded"):
            self.violate(2, f"{value.ns}/{value.name}: its Secret holds {token_hash(value.plaintext)[:8]} again, "
                            f"a value replaced {self.history.now() - value.dead_since:.1f} s ago",
                         key=f"revert/{value.uid}/{token_hash(value.plaintext)}")
        elif value.dead_why.startswith("previous value ended"):
            key = f"ended-previous/{token_hash(value.plaintext)}"
            if key not in self.repeats:
                self.repeats[key] += 1
                self.consumer_stats["secret_on_ended_previous"] += 1
                self.history.add(f"{value.ns}/{value.name}: its Secret still holds the ended previous value "
                                 f"{token_hash(value.plaintext)[:8]} (an interrupted rotation)")

    def consume(self, rng: random.Random) -> None:
        """Pipelines: each Active token's consumer presents the value it read from the Secret twice a second,
        and switches 0-5 s after the Secret changed (within the overlap). A refusal of a value the status
        says is current (recorded >= 1 s before) or previous within its overlap, while the token, its
        account and the verifier's feed are fine, is a violation of 3."""
        now = self.history.now()
        tokens = {t["metadata"]["uid"]: t for t in self.objects("orgapitokens")}
        secrets = {(s["metadata"]["namespace"], s["metadata"]["name"]): s for s in self.objects("secrets")}
        for uid in [uid for uid in self.consumers if uid not in tokens]:
            del self.consumers[uid]
        for uid, token in tokens.items():
            meta, spec, status = token["metadata"], token.get("spec") or {}, token.get("status") or {}
            if status.get("phase") != "Active" or spec.get("revoked") or meta.get("deletionTimestamp"):
                self.consumers.pop(uid, None)
                continue
            secret = secrets.get((meta["namespace"], spec.get("secretName") or meta["name"]))
            raw = ((secret or {}).get("data") or {}).get("token")
            consumer = self.consumers.get(uid)
            if raw is not None:
                plaintext = base64.b64decode(raw).decode()
                digest = token_hash(plaintext)
                if consumer is None:
                    consumer = self.consumers[uid] = Consumer(digest, plaintext, now, next_at=now)
                elif digest != consumer.digest and (consumer.pending is None or consumer.pending[0] != digest):
                    consumer.pending = (digest, plaintext, now + rng.uniform(0, 5))
            if consumer is None:
                continue
            if consumer.pending is not None and consumer.pending[2] <= now:
                consumer.digest, consumer.plaintext = consumer.pending[0], consumer.pending[1]
                consumer.read_at, consumer.pending = now, None
                self.consumer_stats["switches"] += 1
            if consumer.next_at > now:
                continue
            consumer.next_at = now + 0.5
            sent = self.history.now()
            code = self.present(consumer.plaintext)
            self.consumer_stats["requests"] += 1
            self.checks += 1
            if code == 200:
                if consumer.digest == status.get("previousTokenHash"):
                    self.consumer_stats["accepted_previous"] += 1
            elif code in (None, 503):
                self.consumer_stats["verifier_unavailable"] += 1
            else:
                self.consumer_refused(uid, consumer, code, sent)

    def consumer_refused(self, uid: str, consumer: Consumer, code: int, sent: float) -> None:
        """Judge a consumer's refusal on the stores as they are after it (they only move on)."""
        self.consumer_stats["refused"] += 1
        with self.lock:
            value = self.values.get(consumer.digest)
        token = next((t for t in self.objects("orgapitokens") if t["metadata"]["uid"] == uid), None)
        if value is None or value.dead_since is not None or token is None:
            self.consumer_stats["refused_dead"] += 1
            return
        meta, spec, status = token["metadata"], token.get("spec") or {}, token.get("status") or {}
        account = next((a for a in self.objects("orgserviceaccounts") if a["metadata"]["namespace"] == meta["namespace"]
                        and a["metadata"]["name"] == spec.get("serviceAccountName")), None)
        account_status = (account or {}).get("status") or {}
        if (status.get("phase") != "Active" or spec.get("revoked") or meta.get("deletionTimestamp") or account is None
                or account["metadata"].get("deletionTimestamp") or not (account.get("spec") or {}).get("active", True)
                or account_status.get("phase") == "Locked"
                or status.get("serviceAccountUid") not in (None, account["metadata"]["uid"])
                or int(status.get("serviceAccountEpoch") or 0) < int(account_status.get("lockEpoch") or 0)):
            self.consumer_stats["refused_token_or_account_changed"] += 1
            return
        if sent < self.verifier_settled_at:
            self.consumer_stats["refused_verifier_unsettled"] += 1
            return
        offset = time.time() - self.history.now()
        until = wall_time(status.get("previousValidUntil"))
        digest = consumer.digest
        where = f"{meta['namespace']}/{meta['name']}"
        if status.get("tokenHash") == digest and value.confirmed_at is not None and value.confirmed_at <= sent - 1.0:
            self.violate(3, f"{where} is Active; a consumer's current value {digest[:8]} got {code}, "
                            f"{sent - value.confirmed_at:.1f} s after the status recorded it",
                         key=f"consumer/{uid}/{digest}")
        elif status.get("previousTokenHash") == digest and until is not None and until - offset > sent + 0.5:
            self.violate(3, f"{where} is Active; a consumer's previous value {digest[:8]} got {code}, "
                            f"{until - offset - sent:.1f} s before its previousValidUntil",
                         key=f"consumer/{uid}/{digest}")
        else:
            self.consumer_stats["refused_in_transition"] += 1

    def observe_forced_resets(self) -> None:
        """Invariant 4: each forced request gets at most one outcome; Completed (and the other outcomes, which
        also come after both steps) changed the password the harness had set and ended the session it had
        added, in the Authentik store."""
        for managed in self.objects("orgmanagedusers"):
            status = managed.get("status") or {}
            record = status.get("forcedPasswordReset") or {}
            with self.lock:
                for entry in [record, *({"request": r.get("trigger"), "userPk": r.get("userPk")}
                                        for r in status.get("passwordResets") or [] if r.get("forced"))]:
                    if entry.get("request") in self.force_requests and isinstance(entry.get("userPk"), int):
                        self.forced_pks.setdefault(entry["request"], set()).add(entry["userPk"])
                request = self.force_requests.get(record.get("request") or "")
            if request is None or not record.get("outcome"):
                continue
            outcome = (record["outcome"], str(record.get("completedAt")))
            if outcome not in request.outcomes:
                request.outcomes.add(outcome)
                self.history.add(f"{request.ns}/jane: forced reset {request.request}: {record['outcome']} "
                                 f"(user pk {record.get('userPk')}, {record.get('sessionsEnded')} session(s) ended)")
            if len(request.outcomes) > 1 or record["outcome"] not in FORCED_OUTCOMES:
                self.violate(4, f"{request.ns}/jane: forced reset {request.request} has outcomes "
                                f"{sorted(request.outcomes)}", key=f"forced-outcomes/{request.request}")
            if (record["outcome"] in FORCED_OUTCOMES and not request.store_checked and request.user_pk is not None
                    and record.get("userPk") == request.user_pk):  # every outcome comes after both steps
                request.store_checked = True
                user = self.authentik.store.user(request.user_pk)
                said = f"{request.ns}/jane: forced reset {request.request} {record['outcome']}, but"
                if user is not None and password_matches(request.password, user.password):
                    self.violate(4, f"{said} Authentik user {request.user_pk} still has the password set before it")
                if self.authentik.store.session(request.session) is not None:
                    self.violate(4, f"{said} the session of Authentik user {request.user_pk} opened before it "
                                    "still exists")

    def probe_values(self, rng: random.Random) -> None:
        """Present dead values to the verifier: recently dead ones every time, a sample of the older."""
        now = self.history.now()
        with self.lock:
            dead = [v for v in self.values.values() if v.dead_since is not None]
        recent = [v for v in dead if now - (v.dead_since or 0) < 10]
        older = [v for v in dead if now - (v.dead_since or 0) >= 10]
        for value in recent + rng.sample(older, min(8, len(older))):
            sent = self.history.now()
            code = self.present(value.plaintext)
            self.checks += 1
            if code == 200 and value.dead_since is not None and sent > value.dead_since + self.o.grace:
                invariant = 2 if value.dead_why.startswith(("superseded", "status now")) else 1
                digest = token_hash(value.plaintext)[:8]
                self.violate(invariant, f"{value.ns}/{value.name} value {digest} got 200 "
                                        f"{sent - value.dead_since:.1f} s after: {value.dead_why}",
                             key=f"{value.uid}/{digest}/{value.dead_why}")

    def present(self, plaintext: str) -> int | None:
        try:
            return self.probe.get(f"http://127.0.0.1:{self.procs.verifier_port}/auth",
                                  headers={"Authorization": f"Bearer {plaintext}"}).status_code
        except httpx.HTTPError:
            return None

    def check_authentik_writes(self) -> None:
        """Invariant 5: an Authentik write that activates a user whose spec said inactive for a while."""
        requests = self.authentik.traffic.requests()
        new, self.ak_seen = requests[self.ak_seen:], len(requests)
        for request in new:
            body = request.body if isinstance(request.body, dict) else {}
            if request.method not in ("PATCH", "PUT") or body.get("is_active") is not True:
                continue
            if request.status is None or request.status >= 300:
                continue
            pk = request.path.rstrip("/").rsplit("/", 1)[-1]
            user = self.authentik.store.user(int(pk)) if pk.isdigit() else None
            if user is None:
                continue
            at = request.started_at - self.history.start
            timeline = self.mu_timeline.get(user.username, [])
            before = [(t, active) for t, active in timeline if t <= at]
            if before and before[-1][1] is False and at - before[-1][0] > 2.0:
                self.violate(5, f"Authentik user {user.username} reactivated by {request.user_agent} at "
                                f"{at:.1f} s; its spec said inactive since {before[-1][0]:.1f} s")

    # --- convergence (7) and the stores (2-6) ------------------------------------------------------

    def unconverged(self) -> list[str]:
        """What still differs from the declared state, or does not say why it cannot get there."""
        problems = []
        try:
            ready = self.probe.get(f"http://127.0.0.1:{self.procs.verifier_port}/readyz").status_code
        except httpx.HTTPError as error:
            ready = type(error).__name__
        if ready != 200:
            problems.append(f"verifier /readyz: {ready}")
        namespaces = {n["metadata"]["name"]: n for n in self.objects("namespaces")}
        secrets = {(s["metadata"]["namespace"], s["metadata"]["name"]): s for s in self.objects("secrets")}
        users = {u.username: u for u in self.authentik.store.users()}
        accounts = {(a["metadata"]["namespace"], a["metadata"]["name"]): a for a in self.objects("orgserviceaccounts")}
        for plural in ("orgserviceaccounts", "orgmanagedusers", "orgapitokens"):
            for body in self.objects(plural):
                meta, status = body["metadata"], body.get("status") or {}
                where = f"{plural} {meta['namespace']}/{meta['name']}"
                enterprise = (namespaces.get(meta["namespace"], {}).get("metadata", {}).get("labels") or {}).get(
                    PLAN_LABEL) == ENTERPRISE
                if meta.get("deletionTimestamp"):
                    if not held_for_late_writes(body):  # a held deletion says why; finish_deletions bounds it
                        problems.append(f"{where}: deletion pending")
                    continue
                if status.get("observedGeneration", meta.get("generation")) != meta.get("generation"):
                    problems.append(f"{where}: generation {meta.get('generation')} not observed")
                    continue
                ready = next((c for c in status.get("conditions") or [] if c.get("type") == "Ready"), None)
                if ready is None or (ready.get("status") != "True" and not ready.get("reason")):
                    problems.append(f"{where}: no Ready condition saying why")
                    continue
                spec, phase = body.get("spec") or {}, status.get("phase")
                if plural == "orgapitokens" and phase == "Active":
                    account = accounts.get((meta["namespace"], spec.get("serviceAccountName")))
                    bound = status.get("serviceAccountUid")
                    if account is None or (bound and bound != account["metadata"]["uid"]):
                        problems.append(f"{where}: Active, but its service account is gone or another one")
                    secret = secrets.get((meta["namespace"], spec.get("secretName") or meta["name"]))
                    if secret is None:
                        problems.append(f"{where}: Active without its Secret")
                    elif token_hash(base64.b64decode(secret["data"]["token"]).decode()) != status.get("tokenHash"):
                        problems.append(f"{where}: Secret value does not match status.tokenHash")
                if plural == "orgmanagedusers":
                    user = users.get(spec.get("email", ""))
                    if enterprise and phase != ("Active" if spec.get("active", True) else "Locked"):
                        problems.append(f"{where}: phase {phase} but spec.active={spec.get('active', True)}")
                    elif user is not None and user.is_active != spec.get("active", True) and (
                            enterprise or not spec.get("active", True)):
                        problems.append(f"{where}: Authentik is_active={user.is_active}")
                    elif user is None and enterprise:
                        problems.append(f"{where}: no Authentik user")
                if plural == "orgserviceaccounts" and enterprise and phase != (
                        "Active" if spec.get("active", True) else "Locked"):
                    problems.append(f"{where}: phase {phase} but spec.active={spec.get('active', True)}")
        return problems

    def converge(self, round_no: int) -> None:
        """Invariant 7: after the faults stop, everything is Ready or says why within the bound."""
        stopped = time.monotonic()
        problems: list[str] = []
        while time.monotonic() - stopped < self.o.converge_within:
            problems = self.unconverged()
            if not problems:
                break
            time.sleep(0.25)
        took = time.monotonic() - stopped
        self.checks += 1
        if problems:
            self.violate(7, f"round {round_no}: not converged {took:.0f} s after the last fault: {problems[:6]}")
        else:
            self.converge_times.append(took)
            self.history.add(f"round {round_no} converged in {took:.1f} s")
        self.check_stores(round_no)

    def finish_deletions(self, round_no: int) -> None:
        """Invariant 7 for deletions held while a late write may land: they end within the window and the
        convergence bound; then no Authentik user outlives its object (invariant 4)."""
        def held() -> list[str]:
            return [f"{b['metadata']['namespace']}/{b['metadata']['name']}" for b in self.objects("orgmanagedusers")
                    if b["metadata"].get("deletionTimestamp")]
        deadline = time.monotonic() + self.o.late_write_window + self.o.converge_within
        while (pending := held()) and time.monotonic() < deadline:
            time.sleep(0.5)
        self.checks += 1
        if pending:
            self.violate(7, f"after round {round_no}: deletions still pending past the late-write window: {pending}")
        self.check_authentik(round_no)

    def check_stores(self, round_no: int) -> None:
        """Invariants 2-5 against the stores and the running verifier, at a quiet moment."""
        tokens = {t["metadata"]["uid"]: t for t in self.objects("orgapitokens")}
        for secret in self.objects("secrets"):
            owners = secret["metadata"].get("ownerReferences") or []
            token = tokens.get(owners[0]["uid"]) if owners else None
            if token is None or "token" not in (secret.get("data") or {}):
                continue
            plaintext = base64.b64decode(secret["data"]["token"]).decode()
            status, where = token.get("status") or {}, f"{token['metadata']['namespace']}/{token['metadata']['name']}"
            self.checks += 2
            if status.get("phase") == "Active" and token_hash(plaintext) != status.get("tokenHash"):
                self.violate(2, f"round {round_no}: {where}: the Secret's value does not match status.tokenHash")
            elif status.get("phase") == "Active":
                account = self.get("orgserviceaccounts", token["metadata"]["namespace"],
                                   token["spec"]["serviceAccountName"]) or {}
                if (account.get("spec") or {}).get("active", True):
                    code = self.present(plaintext)
                    if code != 200:
                        self.violate(3, f"round {round_no}: {where} is Active but its Secret's value gets {code}")
        self.check_token_values(round_no, tokens)
        self.check_forced_resets(round_no)
        self.check_authentik(round_no)

    def check_token_values(self, round_no: int, tokens: dict[str, dict[str, Any]]) -> None:
        """Invariant 2: every value ever seen of each token is presented; at most two get 200, and only
        the status's current value or its previous one before previousValidUntil."""
        with self.lock:
            by_token: dict[str, list[Value]] = {}
            for value in self.values.values():
                by_token.setdefault(value.uid, []).append(value)
        now_wall = time.time()
        for uid, values in by_token.items():
            token = tokens.get(uid)
            status = (token or {}).get("status") or {}
            accepted = []
            for value in values:
                self.checks += 1
                if self.present(value.plaintext) != 200:
                    continue
                digest = token_hash(value.plaintext)
                accepted.append(digest[:8])
                until = wall_time(status.get("previousValidUntil"))
                if token is None:
                    why = "its token is deleted"
                elif digest == status.get("tokenHash"):
                    continue
                elif digest == status.get("previousTokenHash") and until is not None and until > now_wall:
                    continue
                elif digest == status.get("previousTokenHash"):
                    why = f"it is the previous value, ended at {status.get('previousValidUntil')}"
                else:
                    why = "the status records it neither as current nor as previous"
                where = f"{values[0].ns}/{values[0].name}"
                self.violate(2, f"round {round_no}: {where} value {digest[:8]} gets 200 but {why}",
                             key=f"alive/{uid}/{digest}")
            if len(accepted) > 2:
                self.violate(2, f"round {round_no}: {values[0].ns}/{values[0].name}: {len(accepted)} values get "
                                f"200 ({', '.join(accepted)})", key=f"three/{uid}")

    def check_forced_resets(self, round_no: int) -> None:
        """Invariant 4: a forced request still on its object (not superseded by a later request, the object
        not deleted or recreated) in an Enterprise namespace has an outcome once the faults stopped."""
        namespaces = {n["metadata"]["name"]: n for n in self.objects("namespaces")}
        deadline = time.monotonic() + 10
        while True:
            missing = []
            managed = {m["metadata"]["uid"]: m for m in self.objects("orgmanagedusers")}
            with self.lock:
                requests = list(self.force_requests.values())
            for request in requests:
                body = managed.get(request.uid)
                if body is None or (body["metadata"].get("annotations") or {}).get(RESET_ANNOTATION) != request.request:
                    continue
                labels = namespaces.get(request.ns, {}).get("metadata", {}).get("labels") or {}
                if labels.get(PLAN_LABEL) != ENTERPRISE or body["metadata"].get("deletionTimestamp"):
                    continue
                status = body.get("status") or {}
                record = status.get("forcedPasswordReset") or {}
                if record.get("request") == request.request and record.get("outcome"):
                    continue
                handled = status.get("handledPasswordResetRequest") == request.request
                missing.append((request, handled, record, status))
            if not missing or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        for request, handled, record, status in missing:
            self.checks += 1
            state = ("handled (handledPasswordResetRequest) without a forcedPasswordReset outcome" if handled
                     else "not handled 10 s after convergence")
            resets = [(r.get("trigger"), r.get("userPk")) for r in status.get("passwordResets") or []]
            self.violate(4, f"round {round_no}: {request.ns}/jane: forced reset {request.request} {state}; "
                            f"record {record.get('request')}/{record.get('outcome')}, phase {status.get('phase')}, "
                            f"resets {resets}",
                         key=f"forced-missing/{request.request}")

    def check_authentik(self, round_no: int) -> None:
        users = [u for u in self.authentik.store.users() if u.username.endswith("@acme.example")]
        counts = Counter(u.username for u in users)
        self.checks += 1
        for username, count in counts.items():
            if count > 1:
                self.violate(4, f"round {round_no}: {count} Authentik users {username}")
        declared = {(m.get("spec") or {}).get("email"): m for m in self.objects("orgmanagedusers")}
        emails = Counter(mail.user_pk for mail in self.authentik.store.outbox())
        # One email when the account is set up, and at most one per forced request on it.
        forced: Counter[int] = Counter()
        with self.lock:
            for request in self.force_requests.values():
                pks = {pk for pk in (request.user_pk, *self.forced_pks.get(request.request, ())) if pk is not None}
                if not pks:  # never seen on an account: allow it on any account of that email
                    pks = {u.pk for u in users if u.username == f"jane.{request.ns}@acme.example"}
                for pk in pks:
                    forced[pk] += 1
        for user in users:
            managed = declared.get(user.username)
            if managed is None:
                self.violate(4, f"round {round_no}: Authentik user {user.username} outlives its OrgManagedUser (ghost)")
                continue
            if user.is_active and emails[user.pk] == 0:
                self.violate(4, f"round {round_no}: {user.username} (pk {user.pk}) never got its reset email")
            if emails[user.pk] > 1 + forced[user.pk]:
                self.violate(4, f"round {round_no}: {user.username} (pk {user.pk}) got {emails[user.pk]} reset emails "
                                f"({forced[user.pk]} forced requests)")

    def final_checks(self) -> None:
        """Invariant 6: no plaintext in logs, Events, statuses, annotations, metrics."""
        plaintexts = [v.plaintext for v in self.values.values()]
        if not plaintexts:
            return
        places: dict[str, str] = {}
        for path in self.procs.log_files:
            if path.exists():
                places[f"log {path.name}"] = path.read_text(errors="replace")
        for plural in ("events", "orgserviceaccounts", "orgmanagedusers", "orgapitokens"):
            for body in self.objects(plural):
                text = json.dumps(body) if plural == "events" else json.dumps(
                    [body.get("status"), body["metadata"].get("annotations")])
                places[f"{plural} {body['metadata'].get('namespace')}/{body['metadata']['name']}"] = text
        for secret in self.objects("secrets"):
            annotations = secret["metadata"].get("annotations")
            places[f"secret annotations {secret['metadata']['name']}"] = json.dumps(annotations)
        ports = {"verifier": self.procs.verifier_port, **self.procs.metrics_ports}
        for name, port in ports.items():
            with contextlib.suppress(httpx.HTTPError):
                places[f"metrics {name}"] = self.probe.get(f"http://127.0.0.1:{port}/metrics").text
        for where, text in places.items():
            self.checks += 1
            if any(plaintext in text for plaintext in plaintexts):
                self.violate(6, f"a token plaintext appears in {where}")

    def summary(self, elapsed: float) -> dict[str, Any]:
        times = self.converge_times
        return {
            "seed": self.o.seed, "product": str(self.product.root), "commit": self.product.commit(),
            "lifecycles": self.done_lifecycles, "faults": dict(sorted(self.faults.items())),
            "kubernetes_injected": dict(sorted(self.api.faults.injected.items())),
            "authentik_answers": dict(sorted(Counter(str(r.status) for r in self.authentik.traffic.requests()
                                                     if r.status is None or r.status >= 429).items())),
            "kills": self.kills, "leader_changes": self.leader_changes,
            "verifier_restarts": self.procs.spawns["verifier"] - 1, "invariant_checks": self.checks,
            "token_values": len(self.values), "rotate_requests": self.rotate_requests,
            "rotations": sum(self.rotations.values()), "revocations": self.revocations,
            "forced_resets": len(self.force_requests),
            "forced_outcomes": dict(sorted(Counter(outcome for r in self.force_requests.values()
                                                   for outcome, _ in r.outcomes).items())),
            "consumers": dict(sorted(self.consumer_stats.items())),
            "violations": len(self.violations),
            "violations_by_invariant": dict(Counter(str(v.invariant) for v in self.violations)),
            "converge_after_last_fault_s": {"p50": round(statistics.median(times), 2) if times else None,
                                            "max": round(max(times), 2) if times else None},
            "elapsed_s": round(elapsed, 1),
        }

    def report(self) -> str:
        """What a violation prints: the seed, the schedule and the history, so it replays."""
        lines = [f"chaos run: {len(self.violations)} violations (seed {self.o.seed}, {self.product.root}); replay: "
                 f"bench/chaos.py --seed {self.o.seed} --lifecycles {self.o.lifecycles} --product {self.product.root}"]
        for v in self.violations:
            seen = self.repeats[v.key]
            again = f" (seen {seen} times)" if seen > 1 else ""
            lines.append(f"  invariant {v.invariant} at {v.at:.1f} s: {v.message}{again}")
        lines += ["schedule:"] + [f"  {s}" for s in self.schedule]
        lines += ["history:"] + [f"  {h}" for h in self.history.lines]
        return "\n".join(lines)


def chaos_run(product: Product, options: Options) -> tuple[dict[str, Any], Run]:
    run = Run(product, options)
    try:
        result = run.execute()
    finally:  # an interrupted run leaves its history too
        (options.logs / "history.txt").write_text(run.report())
    return result, run
