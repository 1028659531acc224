"""Capture command output as it streams, within a cap, the way ``transport.cap_output`` does at once.

Why: a command may print 100 MB; buffering it all to keep 64 KiB wastes memory. The collector
keeps the head, a bounded tail and a running SHA-256, and produces the same
:class:`~sysflow.transport.CapturedOutput` as ``cap_output`` would on the whole output.
"""

from __future__ import annotations

import hashlib

from sysflow.transport import DEFAULT_OUTPUT_CAP, CapturedOutput

__all__ = ["OutputCollector"]


class OutputCollector:
    """Feed bytes in; ``captured()`` gives head and tail within ``cap``, total size and digest."""

    __slots__ = ("_cap", "_half", "_hash", "_head", "_tail", "_total")

    def __init__(self, cap: int = DEFAULT_OUTPUT_CAP) -> None:
        self._cap = cap
        self._half = cap // 2
        self._head = bytearray()
        self._tail = bytearray()
        self._total = 0
        self._hash = hashlib.sha256()

    def feed(self, data: bytes) -> None:
        self._total += len(data)
        self._hash.update(data)
        room = self._cap - len(self._head)
        if room > 0:
            self._head += data[:room]
            data = data[room:]
        if data:
            self._tail += data
            if len(self._tail) > 2 * self._half + 4096:
                del self._tail[: len(self._tail) - self._half]

    @property
    def total_bytes(self) -> int:
        return self._total

    def captured(self) -> CapturedOutput:
        digest = self._hash.hexdigest()
        if self._total <= self._cap:
            return CapturedOutput(bytes(self._head).decode("utf-8", "replace"), self._total, False, digest)
        half = self._half
        whole_tail = bytes(self._head[half:] + self._tail) if len(self._tail) < half else bytes(self._tail)
        omitted = self._total - 2 * half
        text = (
            bytes(self._head[:half]).decode("utf-8", "replace")
            + f"\n... [{omitted} bytes omitted] ...\n"
            + whole_tail[-half:].decode("utf-8", "replace")
        )
        return CapturedOutput(text, self._total, True, digest)
