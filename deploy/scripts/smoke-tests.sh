#!/usr/bin/env bash
# Smoke test: walk one real order through the WMS API (API.md), end to end.
#
#   smoke-tests.sh BASE_URL API_KEY
#
#   BASE_URL  e.g. https://api.wms.example.com (no trailing /api/v1)
#   API_KEY   a key of the smoke-test tenant with the admin or supervisor role
#
# Environment:
#   SMOKE_STAGES     "all" (default): receive, allocate, wave, release, pick, pack, ship;
#                    "inbound": stop after allocation (for a server without fulfilment)
#   SMOKE_RUN_ID     suffix making this run's codes unique (default: time + random)
#   SMOKE_TIMEOUT    seconds per HTTP request (default 15)
#
# Every object it creates carries the run id, so runs never collide; use a dedicated
# smoke-test tenant in production. Any unexpected HTTP status stops the test with the
# step, the method and path, the expected and actual status and the response body.
# Needs curl and jq.
set -euo pipefail

usage() {
  echo "usage: $0 BASE_URL API_KEY" >&2
  exit 2
}

[[ $# -eq 2 ]] || usage
BASE_URL=${1%/}
API_KEY=$2
[[ -n $BASE_URL && -n $API_KEY ]] || usage
STAGES=${SMOKE_STAGES:-all}
RUN_ID=${SMOKE_RUN_ID:-$(date -u +%Y%m%d%H%M%S)-$RANDOM}
TIMEOUT=${SMOKE_TIMEOUT:-15}
API="$BASE_URL/api/v1"

for tool in curl jq; do
  command -v "$tool" >/dev/null || { echo "smoke: $tool is required" >&2; exit 2; }
done
case $STAGES in all | inbound) ;; *) echo "smoke: SMOKE_STAGES must be all or inbound" >&2; exit 2 ;; esac

WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
BODY="$WORK/body.json"
STEP=0

log() { printf 'smoke: %s\n' "$*"; }

fail() {
  printf 'smoke: FAILED: %s\n' "$*" >&2
  exit 1
}

# request EXPECTED METHOD PATH [JSON]: the response body is left in $BODY.
request() {
  local expected=$1 method=$2 path=$3 data=${4-} status
  local url="$API$path"
  [[ $path == /health/* ]] && url="$BASE_URL$path"
  STEP=$((STEP + 1))
  local args=(-sS -o "$BODY" -w '%{http_code}' --max-time "$TIMEOUT" -X "$method"
    -H "Authorization: Bearer $API_KEY" -H 'Accept: application/json')
  if [[ -n $data ]]; then
    args+=(-H 'Content-Type: application/json' --data "$data")
  fi
  if [[ $method == POST ]]; then
    args+=(-H "Idempotency-Key: smoke-$RUN_ID-$STEP")
  fi
  if ! status=$(curl "${args[@]}" "$url"); then
    fail "step $STEP: $method $path: no HTTP answer from $BASE_URL"
  fi
  if [[ $status != "$expected" ]]; then
    fail "step $STEP: $method $path answered $status, expected $expected: $(head -c 2000 "$BODY")"
  fi
}

# field FILTER: a value of the last response (jq -r); fails if it is null or absent.
field() {
  local value
  value=$(jq -er "$1" "$BODY") || fail "step $STEP: response has no $1: $(head -c 2000 "$BODY")"
  printf '%s' "$value"
}

# expect FILTER VALUE: the last response's FILTER equals VALUE.
expect() {
  local actual
  actual=$(jq -r "$1" "$BODY")
  [[ $actual == "$2" ]] || fail "step $STEP: $1 is '$actual', expected '$2'"
}

SUFFIX=$(printf '%s' "$RUN_ID" | tr -cd 'A-Za-z0-9' | tail -c 12)
WH="SMK${SUFFIX}"
SKU="SMOKE-${SUFFIX}"
ORDER="SMOKE-SO-${SUFFIX}"
QTY=2

log "run $RUN_ID against $BASE_URL (stages: $STAGES)"

request 200 GET /health/ready
expect .status ok
log "ready"

request 201 POST /warehouses "$(jq -nc --arg c "$WH" \
  '{code: $c, name: "Smoke test warehouse", timezone: "America/Sao_Paulo"}')"
STAGING=$(field .outbound_staging_location)
log "warehouse $WH (staging $STAGING)"

request 201 POST "/warehouses/$WH/zones" '{"code": "P", "name": "Pick"}'
for location in '{"code": "DOCK-1", "type": "dock"}' \
  '{"code": "P-01", "type": "pick", "zone": "P", "pick_sequence": 10, "capacity_units": 1000}'; do
  request 201 POST "/warehouses/$WH/locations" "$location"
done
log "zone P, locations DOCK-1 and P-01"

request 201 POST /products "$(jq -nc --arg s "$SKU" \
  '{sku: $s, description: "Smoke test widget", lot_tracked: false, expiry_tracked: false}')"
log "product $SKU"

# Receive: an ASN, one receipt at the dock, putaway to the pick face.
request 201 POST /asns "$(jq -nc --arg w "$WH" --arg s "$SKU" --arg r "SMOKE-PO-$SUFFIX" \
  '{reference: $r, warehouse: $w, supplier: "Smoke", lines: [{sku: $s, quantity: 10}]}')"
ASN=$(field .id)
request 201 POST "/asns/$ASN/receipts" "$(jq -nc --arg s "$SKU" \
  '{location: "DOCK-1", sku: $s, quantity: 10, lot: null, expiry: null, condition: "good"}')"
request 200 GET "/putaway-tasks?status=open&limit=500"
TASK=$(field "[.items[] | select(.asn == $ASN)][0].id")
request 200 POST "/putaway-tasks/$TASK/confirm" '{"location": "P-01"}'
request 200 GET "/inventory?warehouse=$WH&sku=$SKU&location=P-01"
expect '[.items[].available] | add' 10
log "received 10 on ASN $ASN, put away to P-01"

request 201 POST /orders "$(jq -nc --arg n "$ORDER" --arg w "$WH" --arg s "$SKU" --argjson q "$QTY" \
  '{number: $n, warehouse: $w, customer: "Smoke", carrier: "SMOKE", priority: 5,
    ship_by: "2030-12-01T18:00:00Z",
    ship_to: {name: "Smoke", line1: "Rua A 1", city: "São Paulo", postal_code: "01000-000", country: "BR"},
    lines: [{line: 1, sku: $s, quantity: $q}]}')"
STATUS=$(field .status)
if [[ $STATUS != allocated ]]; then
  request 200 POST "/orders/$ORDER/allocate"
  expect .status allocated
fi
log "order $ORDER allocated"

if [[ $STAGES == inbound ]]; then
  log "PASSED (inbound and allocation only: SMOKE_STAGES=inbound)"
  exit 0
fi

request 201 POST /waves "$(jq -nc --arg w "$WH" --arg n "$ORDER" \
  '{warehouse: $w, orders: [$n], pick_method: "discrete"}')"
WAVE=$(field .id)
request 200 POST "/waves/$WAVE/release"
log "wave $WAVE released"

request 200 GET "/pick-tasks?wave=$WAVE&status=open&limit=500"
jq -c '.items[]' "$BODY" >"$WORK/tasks"
[[ -s $WORK/tasks ]] || fail "wave $WAVE has no open pick task"
while IFS= read -r task; do
  id=$(jq -r .id <<<"$task")
  request 200 POST "/pick-tasks/$id/confirm" \
    "$(jq -c '{location, sku, lot, quantity}' <<<"$task")"
done <"$WORK/tasks"
request 200 GET "/orders/$ORDER"
expect .status picked
log "picked $(wc -l <"$WORK/tasks") task(s) to $STAGING"

request 201 POST "/orders/$ORDER/packages" "$(jq -nc --arg s "$SKU" --argjson q "$QTY" \
  '{packages: [{carton: "BOX-M", weight_kg: 1.2, contents: [{sku: $s, lot: null, quantity: $q}]}]}')"
request 200 GET "/orders/$ORDER"
expect .status packed
log "packed"

request 201 POST /shipments "$(jq -nc --arg n "$ORDER" --arg t "SMK$SUFFIX" \
  '{orders: [$n], carrier: "SMOKE", tracking_number: $t}')"
SHIPMENT=$(field .id)
request 200 POST "/shipments/$SHIPMENT/dispatch"
request 200 GET "/orders/$ORDER"
expect .status shipped
request 200 GET "/inventory?warehouse=$WH&sku=$SKU"
expect '[.items[].on_hand] | add' $((10 - QTY))
log "shipment $SHIPMENT dispatched; order $ORDER shipped"

log "PASSED"
