"""The registry of event types: one JSON Schema of ``data`` per CloudEvents ``type``.

``schemas.json`` is the registry (add a type there when a service emits a new one);
``docs/events.md`` is rendered from it by ``render_docs`` and a test keeps the two equal.
"""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from typing import Any

from wms.events.cloudevents import (
    CONTENT_TYPE,
    EVENTS_TOPIC,
    INBOUND_TOPIC,
    ORDER_CREATE_REQUESTED,
    dataschema,
)


@cache
def registry() -> dict[str, dict[str, Any]]:
    """Event type → JSON Schema (draft 2020-12) of its ``data``."""
    text = resources.files("wms.events").joinpath("schemas.json").read_text(encoding="utf-8")
    schemas: dict[str, dict[str, Any]] = json.loads(text)
    return schemas


_HEAD = f"""# Events

Generated from `src/wms/events/schemas.json` by `python -m wms.events.schemas`; a test
fails when this file and the registry differ.

## Envelope

Every event is a CloudEvents 1.0 JSON object (structured mode): `specversion`, `id`
(a UUID, unique: consumers de-duplicate by it), `source` (`/wms/{{region}}/{{warehouse}}`,
`-` for tenant-wide events), `type`, `subject` (`{{aggregate}}/{{id}}`), `time`,
`datacontenttype` (`application/json`), `dataschema` (the URL below, versioned), the
extension attribute `tenant` (the tenant code) and `data`.

- **Kafka** `{EVENTS_TOPIC}`: value = the event (`{CONTENT_TYPE}`), key =
  `{{tenant}}/{{aggregate}}/{{id}}` (one aggregate's events keep their order), headers `ce_id`,
  `ce_type`. Delivery is at least once, in order per key; `wms-server worker` relays
  the transactional outbox (DESIGN §6.4) in commit order: each transaction that writes
  events draws a number at commit, while it still holds its locks (V16), so of two
  changes that waited for each other (one aggregate's row, a key) the first committed
  is published first, and no open transaction holds committed events back.
- **Feed** `GET /api/v1/events?cursor=`: the same events of the caller's tenant, in
  commit-safe order (by transaction id, shown once every older transaction ended, so a
  cursor never skips one; two changes of one aggregate appear in transaction-id order,
  which may differ from commit order); `next_cursor` is never null; a cursor older than
  the retention (`WMS_EVENT_RETENTION_HOURS`, default 168) answers 410 `cursor-expired`.
- **Intake** `{INBOUND_TOPIC}`: CloudEvent `{ORDER_CREATE_REQUESTED}`, `tenant` = tenant
  code, `data` = a `POST /api/v1/orders` body. The same number and content again is a
  no-op; different content goes to `{INBOUND_TOPIC}.dlq` with header `dlq_reason:
  conflict`; an invalid event goes there with `dlq_reason` `malformed`,
  `unexpected-type`, `invalid` (schema), `unknown-tenant`, `unknown-reference` (unknown
  warehouse or SKU) or another problem slug, and `dlq_detail`; transient database errors
  are retried, never dead-lettered; a constraint or a value PostgreSQL refuses goes
  there too (`conflict` naming the constraint, `invalid`); any other database error
  stops the worker with exit status 1, the message uncommitted, to be read again after
  the fix. A dead letter too large for the DLQ (a message near the size limit, plus the
  `dlq_*` headers) goes without its value, with header `dlq_value_dropped`; `dlq_topic`,
  `dlq_partition` and `dlq_offset` say where the original is. Offsets are committed
  after the database commit; SIGTERM stops the intake at its next message, whatever
  its backlog.
  The topic is trusted (the tenant comes from the message): grant produce on it only
  to the integration platform's principals (Kafka ACLs).

## Worker

`wms-server worker` relays under one session advisory lock per key shard
(`WMS_EVENT_SHARDS`, shared evenly among running workers), wakes on `NOTIFY wms_outbox`
(polling every `WMS_WORKER_POLL_SECONDS` as a fallback), waits while Kafka is away
(the idempotent producer retries without reordering), prunes events older than the
retention (with Kafka configured, only those Kafka acknowledged), deletes idempotency
records past their 24 hours (in batches of 5000: the API already ignores them, this keeps
the table from growing) and creates ledger partitions ahead. An event the producer
refuses for good (over `WMS_KAFKA_MESSAGE_MAX_BYTES`) is parked so its key's later
events go on: `wms-server events parked` lists them, `wms-server events requeue` sends
them again (after the later ones; docs/runbooks/outbox-relay-stalled.md). Metrics on
`METRICS_PORT`:
`wms_outbox_backlog`, `wms_outbox_oldest_unpublished_age_seconds`,
`wms_outbox_parked_events`, `wms_outbox_events_parked_total{{kind}}`,
`wms_outbox_publish_latency_seconds`, `wms_outbox_published_total`,
`wms_outbox_publish_errors_total{{kind}}`, `wms_kafka_up`, `wms_outbox_shards_held`,
`wms_outbox_pruned_total`, `wms_idempotency_keys_purged_total`,
`wms_order_intake_total{{outcome}}`,
`wms_order_intake_retries_total`, `kafka_consumer_lag{{topic,partition,group}}`.

## Types
"""


def render_docs() -> str:
    """The text of ``docs/events.md``."""
    parts = [_HEAD]
    for event_type, schema in sorted(registry().items()):
        parts.append(
            f"\n### `{event_type}`\n\n`dataschema`: {dataschema(event_type)}\n\n"
            f"```json\n{json.dumps(schema, indent=2, ensure_ascii=False)}\n```\n"
        )
    return "".join(parts)


if __name__ == "__main__":
    print(render_docs(), end="")
