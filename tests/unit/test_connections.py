"""`serve`'s HTTP connections (assistant/api/connections.py), on a real uvicorn server on loopback: a client that
sends its request too slowly (slowloris) gets 408 and is closed, as is one whose body stalls; a client that stops
reading is dropped once its send timeout passes, which also ends the response that was waiting for it; an ordinary
slow answer is not affected."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
import uvicorn

from assistant.api.connections import guarded_protocol

REQUEST_S, SEND_S = 0.5, 0.5


class App:
    """/slow answers after a second; /flood streams 1 MB pieces until the client goes (and records that it went)."""

    def __init__(self) -> None:
        self.flood_ended = threading.Event()

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if message["type"] == "http.disconnect" or not message.get("more_body"):
                break
        if scope["path"] == "/flood":
            await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
            try:
                for _ in range(200):  # 200 MB at most: far more than any socket buffer holds
                    await send({"type": "http.response.body", "body": b"x" * 2**20, "more_body": True})
            finally:
                self.flood_ended.set()
            return
        if scope["path"] == "/slow":
            await asyncio.sleep(1.0)
        text = b"ok " + str(len(body)).encode()
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"%d" % len(text))]})
        await send({"type": "http.response.body", "body": text})


@pytest.fixture
def server() -> Iterator[tuple[int, App, uvicorn.Server]]:
    app = App()
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(
        app, http=guarded_protocol(REQUEST_S, SEND_S), lifespan="off", log_level="warning", timeout_keep_alive=30
    )
    srv = uvicorn.Server(config)
    thread = threading.Thread(target=srv.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not srv.started and time.monotonic() < deadline:
        time.sleep(0.02)
    try:
        yield port, app, srv
    finally:
        srv.should_exit = True
        thread.join(10)
        sock.close()


def connect(port: int, rcvbuf: int | None = None) -> socket.socket:
    sock = socket.socket()
    if rcvbuf:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    sock.settimeout(5)
    sock.connect(("127.0.0.1", port))
    return sock


def read_all(sock: socket.socket) -> bytes:
    """Everything until the server closes the connection (or 5 s pass: the socket's timeout raises)."""
    out = b""
    while chunk := sock.recv(65536):
        out += chunk
    return out


def test_a_request_whose_headers_trickle_in_gets_408_and_is_closed(server: tuple[int, App, uvicorn.Server]) -> None:
    port, _, _ = server
    sock = connect(port)
    t0 = time.monotonic()
    sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nX-Slow: ")
    time.sleep(REQUEST_S / 2)
    sock.sendall(b"a")  # still sending: a byte now and then does not extend the deadline
    answer = read_all(sock)
    assert answer.startswith(b"HTTP/1.1 408 ")
    assert b'"code":"request_timeout"' in answer
    assert REQUEST_S <= time.monotonic() - t0 < REQUEST_S + 2


def test_a_connection_that_sends_nothing_is_closed(server: tuple[int, App, uvicorn.Server]) -> None:
    port, _, _ = server
    sock = connect(port)
    t0 = time.monotonic()
    assert read_all(sock).startswith(b"HTTP/1.1 408 ")
    assert time.monotonic() - t0 < REQUEST_S + 2


def test_a_body_that_stalls_is_closed(server: tuple[int, App, uvicorn.Server]) -> None:
    port, _, _ = server
    sock = connect(port)
    t0 = time.monotonic()
    sock.sendall(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n" + b"y" * 10)
    assert b"200 OK" not in read_all(sock)
    assert time.monotonic() - t0 < REQUEST_S + 2


def test_an_answer_slower_than_the_request_deadline_still_arrives_and_the_connection_is_kept(
    server: tuple[int, App, uvicorn.Server],
) -> None:
    port, _, _ = server
    sock = connect(port)
    for _ in range(2):  # the second request on the same connection: the deadline starts again with it
        sock.sendall(b"POST /slow HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc")
        answer = b""
        while not answer.endswith(b"ok 3"):
            chunk = sock.recv(4096)
            assert chunk, f"closed after {answer!r}"
            answer += chunk
        assert answer.startswith(b"HTTP/1.1 200 ")


def test_a_reader_that_stops_reading_is_dropped_and_the_response_waiting_for_it_ends(
    server: tuple[int, App, uvicorn.Server],
) -> None:
    port, app, srv = server
    sock = connect(port, rcvbuf=4096)
    sock.sendall(b"GET /flood HTTP/1.1\r\nHost: x\r\n\r\n")
    # The client holds its socket and never reads: the server lets go by itself.
    assert app.flood_ended.wait(SEND_S + 5), "the stalled response is still waiting for its reader"
    deadline = time.monotonic() + 5
    while srv.server_state.connections and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not srv.server_state.connections
    sock.close()


def test_a_dropped_reader_gets_a_reset_not_the_megabytes_buffered_for_it(
    server: tuple[int, App, uvicorn.Server],
) -> None:
    """Dropping must free the connection, not only the descriptor: a plain close leaves the kernel an orphaned socket
    holding megabytes, with the FIN queued behind them, for as long as the client is alive and takes nothing (the
    client never learns it was dropped). The drop is a reset: the client gets what it had already received, then
    ECONNRESET."""
    port, app, _ = server
    sock = connect(port, rcvbuf=4096)
    sock.sendall(b"GET /flood HTTP/1.1\r\nHost: x\r\n\r\n")
    assert app.flood_ended.wait(SEND_S + 5), "the stalled response is still waiting for its reader"
    time.sleep(0.2)
    got = 0
    with pytest.raises(ConnectionResetError):
        while chunk := sock.recv(65536):
            got += len(chunk)
    assert got < 2**20, f"{got} bytes still delivered after the drop"
    sock.close()
