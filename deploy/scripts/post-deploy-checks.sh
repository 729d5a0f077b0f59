#!/usr/bin/env bash
# Post-deployment checks (seed §9, corrected). Run by the deploy workflow right after
# `helm upgrade`; on the first failing check it rolls the Helm release back to its
# previous revision and exits non-zero.
#
#   post-deploy-checks.sh
#
# Environment (defaults in brackets):
#   NAMESPACE            Kubernetes namespace [wms-prod]
#   RELEASE              Helm release name [wms]
#   BASE_URL             public URL of the API, e.g. https://api.wms.example.com (required)
#   PROMETHEUS_URL       Prometheus base URL, e.g. https://prometheus.wms.example.com (required)
#   PROMETHEUS_JOB       job label of the API's metrics [wms-api]
#   SMOKE_API_KEY        key of the smoke-test tenant; empty skips the smoke test with a
#                        warning unless REQUIRE_SMOKE=true [REQUIRE_SMOKE=true]
#   SMOKE_SCRIPT         [the smoke-tests.sh next to this script]
#   ROLLOUT_TIMEOUT      kubectl rollout status timeout [300s]
#   READY_ATTEMPTS       /health/ready tries, 5 s apart [12]
#   ERROR_WINDOW         PromQL range of the error-ratio query [5m]
#   MAX_ERROR_RATIO      highest acceptable 5xx / all requests over the window [0.01]
#   SETTLE_SECONDS       wait before the metrics check, so new pods are scraped [60]
#   ROLLBACK_ON_FAILURE  run `helm rollback` when a check fails [true]
#   PROMETHEUS_TOKEN     bearer token for Prometheus, if it needs one
#
# Corrections to the seed: `set -euo pipefail`; `kubectl rollout status` (the seed's
# `kubectl get pods | grep -v Running && exit 1` matched the header line and failed
# every time); the seed's `$?` test ran after `exit` and never executed, so it never
# rolled back; the metric check is an error ratio over a window instead of `up`; the
# rollback is `helm rollback` (the seed's `kubectl rollout undo` leaves the release's
# recorded state behind the cluster's, so the next `helm upgrade` fights it).
set -euo pipefail

NAMESPACE=${NAMESPACE:-wms-prod}
RELEASE=${RELEASE:-wms}
BASE_URL=${BASE_URL:?BASE_URL is required (the public URL of the API)}
BASE_URL=${BASE_URL%/}
PROMETHEUS_URL=${PROMETHEUS_URL:?PROMETHEUS_URL is required}
PROMETHEUS_URL=${PROMETHEUS_URL%/}
PROMETHEUS_JOB=${PROMETHEUS_JOB:-wms-api}
SMOKE_API_KEY=${SMOKE_API_KEY:-}
REQUIRE_SMOKE=${REQUIRE_SMOKE:-true}
SMOKE_SCRIPT=${SMOKE_SCRIPT:-"$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/smoke-tests.sh"}
ROLLOUT_TIMEOUT=${ROLLOUT_TIMEOUT:-300s}
READY_ATTEMPTS=${READY_ATTEMPTS:-12}
READY_INTERVAL=${READY_INTERVAL:-5}
ERROR_WINDOW=${ERROR_WINDOW:-5m}
MAX_ERROR_RATIO=${MAX_ERROR_RATIO:-0.01}
SETTLE_SECONDS=${SETTLE_SECONDS:-60}
ROLLBACK_ON_FAILURE=${ROLLBACK_ON_FAILURE:-true}
PROMETHEUS_TOKEN=${PROMETHEUS_TOKEN:-}

log() { printf '[post-deploy] %s\n' "$*"; }

rollback_and_exit() {
  log "FAILED: $*"
  if [[ $ROLLBACK_ON_FAILURE == true ]]; then
    log "rolling back Helm release $RELEASE in $NAMESPACE to its previous revision"
    # Revision 0 is "the previous one"; --wait keeps going until it is rolled out.
    if helm rollback "$RELEASE" 0 --namespace "$NAMESPACE" --wait --timeout 10m; then
      log "rollback done"
    else
      log "ROLLBACK FAILED: intervene by hand (helm history $RELEASE -n $NAMESPACE)"
    fi
  else
    log "ROLLBACK_ON_FAILURE=$ROLLBACK_ON_FAILURE: not rolling back"
  fi
  exit 1
}

check_rollout() {
  local deployments deployment
  log "1/4 rollout of release $RELEASE in $NAMESPACE"
  deployments=$(kubectl get deployments --namespace "$NAMESPACE" \
    --selector "app.kubernetes.io/instance=$RELEASE" --output name) ||
    return 1
  [[ -n $deployments ]] || { log "no deployment of release $RELEASE"; return 1; }
  for deployment in $deployments; do
    kubectl rollout status "$deployment" --namespace "$NAMESPACE" \
      --timeout "$ROLLOUT_TIMEOUT" || return 1
  done
}

check_ready() {
  local attempt
  log "2/4 $BASE_URL/health/ready"
  for ((attempt = 1; attempt <= READY_ATTEMPTS; attempt++)); do
    if curl -fsS --max-time 5 "$BASE_URL/health/ready" >/dev/null; then
      return 0
    fi
    log "not ready yet (attempt $attempt/$READY_ATTEMPTS)"
    sleep "$READY_INTERVAL"
  done
  return 1
}

check_smoke() {
  log "3/4 smoke test"
  if [[ -z $SMOKE_API_KEY ]]; then
    if [[ $REQUIRE_SMOKE == true ]]; then
      log "SMOKE_API_KEY is empty"
      return 1
    fi
    log "WARNING: SMOKE_API_KEY is empty, smoke test skipped (REQUIRE_SMOKE=$REQUIRE_SMOKE)"
    return 0
  fi
  "$SMOKE_SCRIPT" "$BASE_URL" "$SMOKE_API_KEY"
}

# The share of requests answered 5xx over the window (DESIGN §6: 4xx and 429 are not
# errors). No request at all in the window means the metrics are not being scraped,
# which is a failure too, not a pass.
check_error_ratio() {
  local selector query response ratio
  log "4/4 error ratio over $ERROR_WINDOW (max $MAX_ERROR_RATIO), after ${SETTLE_SECONDS}s"
  sleep "$SETTLE_SECONDS"
  selector="job=\"$PROMETHEUS_JOB\",namespace=\"$NAMESPACE\""
  query="sum(rate(http_requests_total{$selector,status=~\"5..\"}[$ERROR_WINDOW])) / sum(rate(http_requests_total{$selector}[$ERROR_WINDOW]))"
  local auth=()
  [[ -n $PROMETHEUS_TOKEN ]] && auth=(-H "Authorization: Bearer $PROMETHEUS_TOKEN")
  response=$(curl -fsS --max-time 10 "${auth[@]}" --get \
    --data-urlencode "query=$query" "$PROMETHEUS_URL/api/v1/query") || {
    log "Prometheus query failed"
    return 1
  }
  if [[ $(jq -r '.status' <<<"$response") != success ]]; then
    log "Prometheus answered: $response"
    return 1
  fi
  ratio=$(jq -r '.data.result[0].value[1] // empty' <<<"$response")
  if [[ -z $ratio || $ratio == NaN ]]; then
    log "no requests of job $PROMETHEUS_JOB in $NAMESPACE over $ERROR_WINDOW (metrics not scraped?)"
    return 1
  fi
  log "error ratio $ratio"
  awk -v r="$ratio" -v max="$MAX_ERROR_RATIO" 'BEGIN { exit !(r + 0 <= max + 0) }' || {
    log "error ratio $ratio is above $MAX_ERROR_RATIO"
    return 1
  }
}

log "release $RELEASE, namespace $NAMESPACE, $BASE_URL"
check_rollout || rollback_and_exit "rollout did not complete"
check_ready || rollback_and_exit "$BASE_URL/health/ready did not answer 200"
check_smoke || rollback_and_exit "smoke test failed"
check_error_ratio || rollback_and_exit "error ratio check failed"
log "all checks passed"
