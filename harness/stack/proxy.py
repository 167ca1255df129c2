"""A loopback TCP proxy in front of a target, for network faults: stall, drop, added latency, lost
responses (a fraction of the target's answers is replaced by a reset: the request arrived, the
client cannot know).

It runs an asyncio loop in a thread of the CLI process; the load goes through it,
setup and final reads go to the target directly. A replicated local stack puts one in front of every
link between its servers too (``harness.stack.redis_sentinel``): a partition stalls them.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import threading
from urllib.parse import urlsplit, urlunsplit

from harness.core.errors import StackError
from harness.stack.process import free_port


class TcpProxy:
    def __init__(self, upstream_host: str, upstream_port: int) -> None:
        self.upstream = (upstream_host, upstream_port)
        self.port = free_port()
        self._stalled = False
        self.delay = 0.0
        self.dropping = False
        self.lose_responses = 0.0  # the fraction of answers reset on their way back
        self.lost = 0  # answers reset so far
        self._random = random.Random()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="counterbench-proxy", daemon=True)
        self._writers: set[asyncio.StreamWriter] = set()
        self._server: asyncio.base_events.Server | None = None
        # set while bytes may flow: a held connection waits on it rather than polling (a partition holds
        # a hundred: the Sentinels reconnect to a silent node every half second)
        self._flowing = asyncio.Event()
        self._flowing.set()

    @property
    def stalled(self) -> bool:
        """Whether the path delivers nothing: bytes are held (connections stay open) until it flows again."""
        return self._stalled

    @stalled.setter
    def stalled(self, on: bool) -> None:
        self._stalled = on  # seen at once by every pump; the event follows on the proxy's loop
        self._loop.call_soon_threadsafe(self._update_flow)

    def _update_flow(self) -> None:
        if self._stalled and not self.dropping:
            self._flowing.clear()
        else:
            self._flowing.set()

    def start(self) -> None:
        self._thread.start()
        fut = asyncio.run_coroutine_threadsafe(self._serve(), self._loop)
        try:
            fut.result(timeout=10)
        except Exception as e:
            raise StackError(f"the fault proxy did not start: {e}") from e

    async def _serve(self) -> None:
        self._server = await asyncio.start_server(self._client, "127.0.0.1", self.port)

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.dropping:
            writer.transport.abort()  # a reset, as a broken network path answers
            return
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.upstream)
        except OSError:
            writer.transport.abort()
            return
        self._writers.update((writer, up_writer))
        await asyncio.gather(self._pump(reader, up_writer), self._pump(up_reader, writer, answers=True),
                             return_exceptions=True)
        for w in (writer, up_writer):
            self._writers.discard(w)
            w.close()

    async def _pump(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, *, answers: bool = False) -> None:
        while True:
            data = await reader.read(65536)
            if not data:
                writer.close()
                return
            if answers and self.lose_responses and self._random.random() < self.lose_responses:
                self.lost += 1
                writer.transport.abort()  # the request was delivered and done; its answer is a reset
                return
            while self._stalled and not self.dropping:  # hold the bytes: a stalled path delivers nothing
                if self._flowing.is_set():
                    await asyncio.sleep(0.005)  # the flag is set and its event not yet cleared: a moment
                else:
                    await self._flowing.wait()
            if self.dropping:
                writer.transport.abort()
                return
            if self.delay:
                await asyncio.sleep(self.delay)
            writer.write(data)
            await writer.drain()

    def drop(self, on: bool) -> None:
        """On: reset every connection and every new one until off."""
        self.dropping = on
        self._loop.call_soon_threadsafe(self._update_flow)
        if on:
            for w in list(self._writers):
                self._loop.call_soon_threadsafe(w.transport.abort)

    def stop(self) -> None:
        async def shutdown() -> None:
            if self._server is not None:
                self._server.close()
            for w in list(self._writers):
                w.transport.abort()
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

        if self._thread.is_alive():
            with contextlib.suppress(Exception):
                asyncio.run_coroutine_threadsafe(shutdown(), self._loop).result(timeout=5)
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=5)

    def url_for(self, url: str) -> str:
        """The target URL with the proxy's address in place of the target's."""
        parts = urlsplit(url)
        netloc = f"127.0.0.1:{self.port}"
        if "@" in parts.netloc:
            netloc = parts.netloc.rsplit("@", 1)[0] + "@" + netloc
        return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))

    def __enter__(self) -> TcpProxy:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def proxy_for(url: str) -> TcpProxy:
    parts = urlsplit(url)
    default = {"redis": 6379, "http": 80, "https": 443}.get(parts.scheme, 80)
    return TcpProxy(parts.hostname or "127.0.0.1", parts.port or default)
