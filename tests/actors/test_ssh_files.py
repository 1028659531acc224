"""Pacing and pipelining of SFTP writes, without a server: the token bucket on a manual clock (a
transfer of S bytes at rate R takes (S - burst) / R seconds of clock time, never waits when the
bytes are there), and the writer keeps at most ``in_flight`` writes going, each at its own offset,
stopping the rest at the first failure. tests/actors/test_ssh_files_sshd.py runs it over real SFTP."""

from __future__ import annotations

import asyncio
import io

import pytest

from sysflow.actors.ssh_files import CHUNK, TokenBucket, _stream
from sysflow.clock import ManualClock


def test_a_full_bucket_sends_its_burst_at_once_then_waits_for_each_chunk() -> None:
    clock = ManualClock()
    bucket = TokenBucket(1_000_000, clock, burst=CHUNK)
    assert bucket.delay(CHUNK) == 0.0  # the first chunk: the bucket starts full
    assert bucket.delay(CHUNK) == pytest.approx(CHUNK / 1_000_000)  # the next one is paid for first
    clock.advance(CHUNK / 1_000_000)
    assert bucket.tokens == pytest.approx(0.0)


def test_sending_s_bytes_at_rate_r_takes_s_minus_burst_over_r_of_clock_time() -> None:
    clock = ManualClock()
    rate, size = 2_000_000.0, 4 * 1024 * 1024  # 16 Mbit/s, 4 MiB
    bucket = TokenBucket(rate, clock)

    async def send() -> None:
        for _ in range(size // CHUNK):
            await bucket.take(CHUNK)

    asyncio.run(send())
    assert clock.monotonic() == pytest.approx((size - CHUNK) / rate)
    assert bucket.waited == pytest.approx(clock.monotonic())


def test_an_idle_bucket_refills_only_up_to_its_burst() -> None:
    clock = ManualClock()
    bucket = TokenBucket(1000.0, clock, burst=500)
    bucket.delay(500)
    clock.advance(3600)  # an hour idle: still only one burst ready
    assert bucket.tokens == 500
    assert bucket.delay(500) == 0.0
    assert bucket.delay(1000) == pytest.approx(1.0)  # more than the burst: in debt, paid over time


def test_a_slow_link_is_not_charged_twice() -> None:
    """Time spent waiting for the link refills the bucket: pacing never adds to a slower transfer."""
    clock = ManualClock()
    bucket = TokenBucket(1_000_000.0, clock)
    bucket.delay(CHUNK)
    clock.advance(1.0)  # the link took a second for the last chunk, slower than the rate
    assert bucket.delay(CHUNK) == 0.0


def test_a_rate_must_be_positive() -> None:
    with pytest.raises(ValueError, match="positive"):
        TokenBucket(0, ManualClock())


class FakeRemote:
    """An SFTP file: records each write's offset and length, and the most writes pending at once."""

    def __init__(self, *, fail_at: int | None = None, delay: float = 0.001) -> None:
        self.data = bytearray()
        self.offsets: list[int] = []
        self.pending = 0
        self.most = 0
        self.cancelled = 0
        self.fail_at = fail_at
        self.delay = delay

    async def write(self, data: bytes, offset: int) -> int:
        self.pending += 1
        self.most = max(self.most, self.pending)
        try:
            await asyncio.sleep(self.delay)
            if offset == self.fail_at:
                raise OSError("disk full")
            end = offset + len(data)
            if len(self.data) < end:
                self.data.extend(bytes(end - len(self.data)))
            self.data[offset:end] = data
            self.offsets.append(offset)
            return len(data)
        except asyncio.CancelledError:
            self.cancelled += 1
            raise
        finally:
            self.pending -= 1


def test_writes_are_pipelined_at_their_offsets_and_bounded_in_flight() -> None:
    payload = bytes(range(256)) * (20 * CHUNK // 256) + b"tail"
    remote = FakeRemote()
    sent = asyncio.run(_stream(io.BytesIO(payload), remote, None, 4))
    assert sent == len(payload) and bytes(remote.data) == payload
    assert sorted(remote.offsets) == [i * CHUNK for i in range(21)]
    assert remote.most == 4  # four at once, never more


def test_the_first_failed_write_stops_the_others_and_is_raised() -> None:
    remote = FakeRemote(fail_at=3 * CHUNK)
    with pytest.raises(OSError, match="disk full"):
        asyncio.run(_stream(io.BytesIO(bytes(40 * CHUNK)), remote, None, 8))
    assert remote.pending == 0  # nothing left running
    assert max(remote.offsets) < 12 * CHUNK  # stopped early, not after the whole file


def test_pacing_holds_the_writer_to_the_rate_on_the_clock() -> None:
    clock = ManualClock()
    remote = FakeRemote(delay=0)
    size = 10 * CHUNK
    asyncio.run(_stream(io.BytesIO(bytes(size)), remote, TokenBucket(CHUNK, clock), 8))  # a chunk a second
    assert clock.monotonic() == pytest.approx(9.0)
    assert len(remote.data) == size
