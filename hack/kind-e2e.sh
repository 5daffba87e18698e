#!/usr/bin/env bash
# End to end on a local kind cluster, for machines with Docker (`make e2e`):
#   1. creates a kind cluster (or reuses it), builds the image and loads it into the cluster;
#   2. applies the CRDs, then manifests/overlays/kind: the operator and the verifier, one replica each;
#   3. applies examples/ (organization acme, its service accounts and tokens), waits for a token's Secret;
#   4. calls the verifier with that token through kubectl port-forward and expects 200;
#   5. deletes the token (revocation) and expects 401.
# Needs docker (with a running engine), kind, kubectl and curl. KEEP_CLUSTER=1 keeps the cluster.
set -euo pipefail
cd "$(dirname "$0")/.."

CLUSTER="${CLUSTER:-org-operator-e2e}"
IMAGE=org-operator:dev
OVERLAY=manifests/overlays/kind
NAMESPACE=acme
TOKEN=globex-production
LOCAL_PORT=18080

say() { printf 'kind-e2e: %s\n' "$*"; }
fail() { say "FAILED: $*" >&2; exit 1; }
k() { kubectl --context "kind-$CLUSTER" "$@"; }

for tool in docker kind kubectl curl base64; do
  command -v "$tool" >/dev/null || fail "$tool is required"
done
docker info >/dev/null 2>&1 || fail "no Docker engine answers (docker info)"

port_forward=""
cleanup() {
  if [[ -n "$port_forward" ]]; then kill "$port_forward" 2>/dev/null || true; fi
  if [[ -z "${KEEP_CLUSTER:-}" ]]; then kind delete cluster --name "$CLUSTER" >/dev/null 2>&1 || true; fi
}
trap cleanup EXIT

if ! kind get clusters 2>/dev/null | grep -qx "$CLUSTER"; then
  say "creating kind cluster $CLUSTER"
  kind create cluster --name "$CLUSTER" --wait 120s
fi

say "building $IMAGE and loading it into the cluster"
docker build -t "$IMAGE" .
kind load docker-image "$IMAGE" --name "$CLUSTER"

# One apply: the overlay holds our CRDs and nothing of their kinds (the replicas share a built-in Lease).
say "installing $OVERLAY"
k apply -k "$OVERLAY"
k -n org-operator rollout status deployment/org-operator --timeout 180s
k -n org-operator rollout status deployment/org-operator-verifier --timeout 180s

say "applying examples/ and waiting for Secret $NAMESPACE/$TOKEN"
k apply -f examples/
for _ in $(seq 120); do
  k -n "$NAMESPACE" get secret "$TOKEN" >/dev/null 2>&1 && break
  sleep 1
done
token="$(k -n "$NAMESPACE" get secret "$TOKEN" -o jsonpath='{.data.token}' | base64 -d)" || fail "no Secret $TOKEN"
[[ "$token" == oat_* ]] || fail "Secret $TOKEN holds no oat_ token"

k -n org-operator port-forward service/org-operator-verifier "$LOCAL_PORT:80" >/dev/null &
port_forward=$!
for _ in $(seq 30); do
  curl -fs -o /dev/null "http://127.0.0.1:$LOCAL_PORT/readyz" && break
  sleep 1
done
answer() { curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $1" "http://127.0.0.1:$LOCAL_PORT/auth"; }

code="$(answer "$token")"
[[ "$code" == 200 ]] || fail "the verifier answered $code to a valid token, expected 200"
say "valid token: 200"

k -n "$NAMESPACE" delete orgapitoken "$TOKEN"
for _ in $(seq 10); do
  code="$(answer "$token")"
  [[ "$code" == 401 ]] && break
  sleep 1
done
[[ "$code" == 401 ]] || fail "the verifier answered $code to a revoked token, expected 401"
say "revoked token: 401"
say "passed"
