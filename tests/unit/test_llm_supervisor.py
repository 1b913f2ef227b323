"""The supervisor restarts a dead model server, within a budget."""

from __future__ import annotations

import asyncio

import pytest

from assistant.llm.supervisor import Supervisor

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


class FlakyServer:
    def __init__(self, restart_ok: bool = True) -> None:
        self.up = True
        self.restart_ok = restart_ok
        self.restarted = 0

    def running(self) -> bool:
        return self.up

    async def restart_async(self) -> object:
        self.restarted += 1
        if not self.restart_ok:
            raise RuntimeError("no")
        self.up = True
        return self


async def test_a_dead_server_is_restarted() -> None:
    server = FlakyServer()
    sup = Supervisor(server, interval_s=0.01)
    sup.start()
    server.up = False
    for _ in range(200):
        await asyncio.sleep(0.01)
        if server.restarted:
            break
    await sup.stop()
    assert server.restarted == 1 and server.up


async def test_restarts_stop_after_the_budget() -> None:
    server = FlakyServer(restart_ok=False)
    server.up = False
    sup = Supervisor(server, interval_s=0.01, max_restarts=2, window_s=60)
    sup.start()
    for _ in range(100):
        await asyncio.sleep(0.01)
    await sup.stop()
    assert server.restarted == 2 and sup.gave_up
