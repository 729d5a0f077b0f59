"""A relay confirms its shard lease before every batch and never relays a shard it lost."""

from __future__ import annotations

import asyncio

import psycopg
import pytest

from wms.events import kafka
from wms.events.relay import LOCK_CLASS, Relay

NO_BROKER = "127.0.0.1:9"  # nothing is produced in these tests: no event is waiting


def new_relay(database_url: str) -> Relay:
    return Relay(
        admin_url=database_url,
        producer=kafka.producer(NO_BROKER),
        stop=asyncio.Event(),
        shard_count=4,
    )


async def started(relay: Relay) -> Relay:
    await relay._connect()
    await relay._rebalance()
    return relay


def test_a_relay_whose_lease_session_was_ended_stops_before_reading_a_batch(
    database_url: str,
) -> None:
    async def run() -> None:
        relay = await started(new_relay(database_url))
        assert relay.shards == {0, 1, 2, 3}
        assert relay._lease is not None
        with psycopg.connect(database_url, autocommit=True) as admin:
            pid = relay._lease.info.backend_pid
            admin.execute("SELECT pg_terminate_backend(%s, 5000)", (pid,))  # waits for its exit
        # The locks went with the session: another worker may own the shards now.
        other = await started(new_relay(database_url))
        try:
            assert other.shards == {0, 1, 2, 3}
            with pytest.raises(psycopg.OperationalError):
                await relay.relay_once()
        finally:
            await relay.close()
            await other.close()

    asyncio.run(run())


def test_a_shard_lost_while_the_session_lives_is_given_up_before_the_next_batch(
    database_url: str,
) -> None:
    async def run() -> None:
        relay = await started(new_relay(database_url))
        other = new_relay(database_url)
        try:
            assert relay._lease is not None
            await relay._lease.execute("SELECT pg_advisory_unlock(%s, 2)", (LOCK_CLASS,))
            await other._connect()
            assert other._lease is not None
            taken = await other._lease.execute("SELECT pg_try_advisory_lock(%s, 2)", (LOCK_CLASS,))
            assert (await taken.fetchone()) == (True,)
            assert await relay.relay_once() == 0
            assert relay.shards == {0, 1, 3}
        finally:
            await relay.close()
            await other.close()

    asyncio.run(run())
