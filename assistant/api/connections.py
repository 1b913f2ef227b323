"""The HTTP connections `serve` holds, with two deadlines uvicorn does not have: a client must send its whole request
(headers and body) within `request_timeout_s`, and a connection whose client takes none of the bytes waiting for it
for `send_timeout_s` is dropped.

Without them a slowloris (a request a byte every few seconds) holds a descriptor for as long as it likes, and so
does a reader that stopped reading: its stream's sends wait forever, and a close with bytes still buffered never
completes. A drop is a reset (SO_LINGER 0), so the kernel frees what it buffered for the client too, and the client
learns at once that it was dropped. A dropped stream loses nothing: its client reconnects with Last-Event-ID and reads
the rest from the log. Heartbeats do not extend the send deadline: only the client taking bytes (the buffer draining
below its low-water mark) does.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import struct
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

log = logging.getLogger(__name__)

REQUEST_TIMEOUT = (
    b"HTTP/1.1 408 Request Timeout\r\ncontent-type: application/json\r\nconnection: close\r\ncontent-length: "
)
REQUEST_TIMEOUT_BODY = b'{"error":{"code":"request_timeout","message":"the request was not received in time"}}'


class _Transport:
    """The connection's transport as uvicorn sees it: a close with bytes still buffered gives the client
    `send_timeout_s` to take them, then aborts (a plain close would wait for a reader that never reads)."""

    def __init__(self, transport: asyncio.Transport, protocol: GuardedHttpToolsProtocol) -> None:
        self._transport, self._protocol = transport, protocol

    def close(self) -> None:
        self._transport.close()
        if self._transport.get_write_buffer_size():
            self._protocol.watch_stall()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


class GuardedHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with the request deadline and the send deadline (`guarded_protocol` sets them)."""

    request_timeout_s = 20.0
    send_timeout_s = 30.0

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        self._request_timer: asyncio.TimerHandle | None = None
        self._stall_timer: asyncio.TimerHandle | None = None
        self._reading_head = True
        self._lost = False
        super().connection_made(transport)
        self.transport = _Transport(transport, self)  # type: ignore[assignment]
        self._arm_request()

    def connection_lost(self, exc: Exception | None) -> None:
        self._lost = True  # a close after this (uvicorn's, at the response's end) must not arm the send deadline
        for timer in (self._request_timer, self._stall_timer):
            if timer is not None:
                timer.cancel()
        self._request_timer = self._stall_timer = None
        super().connection_lost(exc)

    # --- the request deadline: from the request's first byte (or the connection's start) to its last

    def _arm_request(self) -> None:
        if self._request_timer is not None:
            self._request_timer.cancel()
        self._request_timer = self.loop.call_later(self.request_timeout_s, self._request_timed_out)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._reading_head = True
        self._arm_request()

    def on_headers_complete(self) -> None:
        self._reading_head = False
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        if self._request_timer is not None:
            self._request_timer.cancel()
            self._request_timer = None
        super().on_message_complete()

    @property
    def _peer(self) -> str:
        return f"{self.client[0]}:{self.client[1]}" if self.client else "?"

    def _request_timed_out(self) -> None:
        self._request_timer = None
        if self.transport.is_closing():
            return
        log.info("%s: request not received within %.0f s; closing", self._peer, self.request_timeout_s)
        if self._reading_head:  # no response can have started: say why before closing
            body = REQUEST_TIMEOUT_BODY
            self.transport.write(REQUEST_TIMEOUT + str(len(body)).encode() + b"\r\n\r\n" + body)
        self.transport.close()

    # --- the send deadline: while the transport's buffer is over its high-water mark, or after a close with bytes
    # still buffered

    def pause_writing(self) -> None:
        super().pause_writing()
        self.watch_stall()

    def resume_writing(self) -> None:
        super().resume_writing()
        if self._stall_timer is not None:
            self._stall_timer.cancel()
            self._stall_timer = None

    def watch_stall(self) -> None:
        if self._stall_timer is None and not self._lost:
            self._stall_timer = self.loop.call_later(self.send_timeout_s, self._send_stalled)

    def _send_stalled(self) -> None:
        self._stall_timer = None
        log.info("%s: took no data for %.0f s; dropping the connection", self._peer, self.send_timeout_s)
        # A plain abort frees the descriptor but not the connection: the kernel keeps the orphaned socket, its send
        # buffer (megabytes) and the FIN queued behind it for as long as the client stays alive and takes nothing, so
        # the client never learns it was dropped. Lingering 0 s makes the close a reset that discards them.
        sock = self.transport.get_extra_info("socket")
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.transport.abort()


def guarded_protocol(request_timeout_s: float, send_timeout_s: float) -> type[GuardedHttpToolsProtocol]:
    """The protocol class for `uvicorn.run(http=...)` with these deadlines."""
    return type(
        "GuardedHttpToolsProtocol",
        (GuardedHttpToolsProtocol,),
        {"request_timeout_s": request_timeout_s, "send_timeout_s": send_timeout_s},
    )
