"""Run a ponder server on a background thread, on a free loopback port: for tests and notebooks.

    from ponder.models import ScriptedModel
    from ponder.serve.background import BackgroundServer

    with BackgroundServer(ScriptedModel(["6 * 7 = 42. \\\\boxed{42}"])) as srv:
        client = openai.OpenAI(base_url=srv.base_url, api_key="unused")
        ...

The server runs its own event loop on its own thread; the model is used only from that loop.
"""

from __future__ import annotations

import socket
import threading
import time

from ponder.models.base import Model
from ponder.serve.settings import ServeSettings


def listen(host: str, port: int) -> socket.socket:
    """A listening TCP socket on host:port (port 0: a free one), IPv4 or IPv6 as the host says."""
    family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][0]
    sock = socket.create_server((host, port), family=family)
    # asyncio turns Nagle off (TCP_NODELAY) only on connections whose socket says proto TCP, and
    # create_server leaves proto 0, which accepted sockets inherit: every plain response's body
    # then waited ~40 ms for the client's delayed ACK of the headers. The same socket, marked TCP:
    return socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP, fileno=sock.detach())


class BackgroundServer:
    def __init__(
        self,
        model: Model,
        settings: ServeSettings | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        import uvicorn

        from ponder.serve.app import create_app

        self.app = create_app(model, settings)
        self._socket = listen(host, port)
        self.host, self.port = self._socket.getsockname()[:2]
        config = uvicorn.Config(
            self.app, log_level="warning", lifespan="off", timeout_graceful_shutdown=2
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [self._socket]}, daemon=True
        )

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    @property
    def base_url(self) -> str:
        """What an OpenAI client takes as ``base_url``."""
        return self.url + "/v1"

    @property
    def in_flight(self) -> int:
        return self.app.state.gate.in_flight

    def start(self, timeout: float = 10.0) -> BackgroundServer:
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the ponder server did not start")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=10)
        self._socket.close()

    def __enter__(self) -> BackgroundServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
