"""Every event a test's commands committed must match its documented JSON Schema.

``database_url`` runs ``check_outbox`` when a test ends, so the whole suite checks the
registry against real events, not only the schema test's own stories. The check is
stricter than the published schemas: it forbids properties the schema does not list
(the published ones allow additions so consumers keep working when a field is added),
so a field added to an event without documenting it fails here.
"""

from __future__ import annotations

import copy
import json
import os
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import psycopg

from wms.events.schemas import registry

TEST_TYPES = "wms.test."


def _closed(schema: dict[str, Any]) -> dict[str, Any]:
    """``schema`` with ``additionalProperties: false`` on every object that lists properties."""
    closed = copy.deepcopy(schema)

    def close(node: Any) -> None:
        if isinstance(node, dict):
            if "properties" in node and "additionalProperties" not in node:
                node["additionalProperties"] = False
            for value in node.values():
                close(value)
        elif isinstance(node, list):
            for value in node:
                close(value)

    close(closed)
    return closed


@cache
def _validator(event_type: str) -> jsonschema.Draft202012Validator:
    return jsonschema.Draft202012Validator(_closed(registry()[event_type]))


def check_outbox(database_url: str) -> None:
    """Fail with the first event whose type is unregistered or whose data breaks its schema."""
    try:
        with psycopg.connect(database_url, connect_timeout=5) as conn:
            rows = conn.execute("SELECT type, data FROM wms.outbox ORDER BY id").fetchall()
    except (psycopg.errors.UndefinedTable, psycopg.errors.InvalidSchemaName):
        return  # a migration test's database, rolled back or never migrated
    samples = os.environ.get("WMS_EVENT_SAMPLES")
    if samples:  # a maintainer's aid: collect real data to review a schema change against
        with Path(samples).open("a", encoding="utf-8") as out:
            for event_type, data in rows:
                out.write(json.dumps({"type": event_type, "data": data}) + "\n")
    for event_type, data in rows:
        if event_type.startswith(TEST_TYPES):
            continue  # rows a relay test wrote itself, not a service's event
        assert event_type in registry(), f"event type {event_type} is not in schemas.json"
        error = jsonschema.exceptions.best_match(_validator(event_type).iter_errors(data))
        assert error is None, f"{event_type} breaks its schema: {error.message} in {data}"


def outbox_of(database_url: str, event_type: str) -> list[dict[str, Any]]:
    """The data of every event of ``event_type`` in the outbox, oldest first."""
    with psycopg.connect(database_url) as conn:
        rows = conn.execute(
            "SELECT data FROM wms.outbox WHERE type = %s ORDER BY id", (event_type,)
        ).fetchall()
    return [row[0] for row in rows]
