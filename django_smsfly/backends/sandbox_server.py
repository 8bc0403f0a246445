"""The sandbox served over real HTTP on this machine, for end-to-end tests, demos and benchmarks.

:func:`make_wsgi_app` turns a :class:`~django_smsfly.backends.sandbox.Simulator` into a WSGI
application that renders injected faults as a real server would (status codes,
``Retry-After``, HTML pages, broken JSON, silence, dropped connections, endless bodies).
:class:`SandboxServer` runs it in a background thread with persistent (keep-alive)
HTTP/1.1 connections::

    with SandboxServer(latency=0.02) as server:
        SMSFLY = {"API_URL": server.url, "API_KEY": "any-key", ...}
        server.simulator.inject(Fault.RATE_LIMITED, retry_after=2)

From a shell, until Ctrl-C::

    python -m django_smsfly.backends.sandbox_server --port 8765 --latency 0.02 --speed 10
"""

from __future__ import annotations

import argparse
import contextlib
import io
import signal
import socket
import socketserver
import struct
import sys
import threading
from collections.abc import Iterable, Sequence
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any

from django_smsfly.backends.sandbox import (
    API_PATH,
    TEST_NUMBERS,
    Fault,
    SandboxOptions,
    Simulator,
)

if TYPE_CHECKING:  # pragma: no cover
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment
    from typing_extensions import Unpack

__all__ = ["AbortConnection", "SandboxServer", "main", "make_wsgi_app"]

#: Bodies larger than this are refused with HTTP 413 (SMS-fly requests are small).
MAX_BODY = 1024 * 1024

#: Bytes per chunk of a reply streamed without a ``Content-Length`` (HUGE_BODY).
STREAM_CHUNK = 64 * 1024


class AbortConnection(Exception):
    """Raised by the WSGI app to have the server drop the connection without a reply.

    :class:`SandboxServer` understands it; another WSGI server answers HTTP 500 instead.
    """


def _reason(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Unknown"


def _plain(
    start_response: StartResponse, status: int, text: str, *extra: tuple[str, str]
) -> list[bytes]:
    body = text.encode("utf-8")
    start_response(
        f"{status} {_reason(status)}",
        [
            ("Content-Type", "text/plain; charset=utf-8"),
            ("Content-Length", str(len(body))),
            *extra,
        ],
    )
    return [body]


def make_wsgi_app(
    simulator: Simulator, *, shutdown: threading.Event | None = None
) -> WSGIApplication:
    """A WSGI application answering SMS-fly API requests (``POST`` JSON) from ``simulator``.

    A TIMEOUT fault keeps the request waiting for its ``delay`` (cut short when
    ``shutdown`` is set) before the connection is dropped; CONNECTION_RESET and
    CONNECTION_REFUSED drop it at once (see :class:`AbortConnection`). A HUGE_BODY reply
    comes without a ``Content-Length``, in pieces that :class:`SandboxServer` sends as
    HTTP/1.1 chunks.
    """
    stop = shutdown if shutdown is not None else threading.Event()

    def app(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        if environ.get("REQUEST_METHOD", "GET").upper() != "POST":
            return _plain(start_response, 405, "Method Not Allowed\n", ("Allow", "POST"))
        try:
            length = int(environ.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = -1
        if not 0 <= length <= MAX_BODY:
            return _plain(start_response, 413, "Request body too large\n")
        raw = environ["wsgi.input"].read(length) if length else b""
        reply = simulator.respond(raw)
        if reply.fault is Fault.TIMEOUT:
            stop.wait(reply.delay)
            raise AbortConnection
        if reply.fault in {Fault.CONNECTION_RESET, Fault.CONNECTION_REFUSED}:
            raise AbortConnection
        headers = [("Content-Type", reply.content_type), *reply.headers.items()]
        if reply.chunked:
            # No Content-Length: the server streams the body (SandboxServer chunks it).
            start_response(f"{reply.http_status} {_reason(reply.http_status)}", headers)
            content = reply.content
            return (content[i : i + STREAM_CHUNK] for i in range(0, len(content), STREAM_CHUNK))
        headers.append(("Content-Length", str(len(reply.content))))
        start_response(f"{reply.http_status} {_reason(reply.http_status)}", headers)
        return [reply.content]

    return app


class _Handler(BaseHTTPRequestHandler):
    """Speaks HTTP/1.1 with keep-alive and hands each request to the WSGI app."""

    protocol_version = "HTTP/1.1"
    server_version = "SMSflySandbox/1.0"
    # Headers and body leave in two writes; with Nagle's algorithm on, the body would
    # wait for the client's delayed ACK (about 40 ms on Linux) on every kept-alive reply.
    disable_nagle_algorithm = True
    #: Idle keep-alive connections are closed after this many seconds.
    timeout = 30
    server: _HTTPServer

    def do_POST(self) -> None:
        """Run the WSGI app for this request."""
        self._run_app()

    # The app answers other methods (with 405), as a WSGI server would let it.
    def do_GET(self) -> None:
        """Run the WSGI app for this request."""
        self._run_app()

    def do_HEAD(self) -> None:
        """Run the WSGI app for this request."""
        self._run_app()

    def do_PUT(self) -> None:
        """Run the WSGI app for this request."""
        self._run_app()

    def do_DELETE(self) -> None:
        """Run the WSGI app for this request."""
        self._run_app()

    def _run_app(self) -> None:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            # Not needed by any client of the API; say so rather than misread the body.
            self.send_error(411)
            return
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            length = -1
        if not 0 <= length <= MAX_BODY:
            self.send_error(413)
            self.close_connection = True
            return
        body = self.rfile.read(length) if length else b""
        path, _, query = self.path.partition("?")
        environ: dict[str, Any] = {
            "REQUEST_METHOD": self.command,
            "SCRIPT_NAME": "",
            "PATH_INFO": path,
            "QUERY_STRING": query,
            "CONTENT_TYPE": self.headers.get("Content-Type", ""),
            "CONTENT_LENGTH": str(len(body)),
            "SERVER_NAME": self.server.server_name,
            "SERVER_PORT": str(self.server.server_port),
            "SERVER_PROTOCOL": self.request_version,
            "REMOTE_ADDR": self.client_address[0],
            "wsgi.version": (1, 0),
            "wsgi.url_scheme": "http",
            "wsgi.input": io.BytesIO(body),
            "wsgi.errors": io.StringIO(),  # quiet: nothing reaches stderr
            "wsgi.multithread": True,
            "wsgi.multiprocess": False,
            "wsgi.run_once": False,
        }
        for name, value in self.headers.items():
            key = "HTTP_" + name.upper().replace("-", "_")
            if key not in {"HTTP_CONTENT_TYPE", "HTTP_CONTENT_LENGTH"}:
                environ[key] = value
        started: list[Any] = []

        def start_response(
            status: str, headers: list[tuple[str, str]], exc_info: Any = None
        ) -> Any:
            started[:] = [status, headers]
            return self.wfile.write

        try:
            chunks: Iterable[bytes] = self.server.app(environ, start_response)
            if not started:  # an app that starts its response on the first item
                chunks = [b"".join(chunks)]
            # Without a Content-Length the body is streamed, chunk by chunk, as produced.
            streamed = not any(name.lower() == "content-length" for name, _ in started[1])
            if not streamed:
                chunks = [b"".join(chunks)]
        except AbortConnection:
            self._drop()
            return
        except Exception:  # a bug in the app must not kill the connection thread silently
            self.send_error(500)
            self.close_connection = True
            return
        status, headers = started
        code, _, reason = status.partition(" ")
        self.send_response(int(code), reason)
        for name, value in headers:
            self.send_header(name, value)
        if streamed:
            self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        if self.command == "HEAD":
            return
        if not streamed:
            self.wfile.write(b"".join(chunks))
            return
        try:
            for chunk in chunks:
                if chunk:
                    self.wfile.write(b"%X\r\n%s\r\n" % (len(chunk), chunk))
            self.wfile.write(b"0\r\n\r\n")
        except OSError:  # the client stopped reading (a reply size cap): so be it
            self.close_connection = True

    def _drop(self) -> None:
        # SO_LINGER 0 makes close() send a TCP reset, as a crashed upstream would.
        # The buffered files hold the socket open; close them first so the reset happens now.
        self.close_connection = True
        try:
            self.connection.setsockopt(
                socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0)
            )
            self.wfile.close()
            self.rfile.close()
            self.connection.close()
        except OSError:
            pass

    def log_message(self, format: str, *args: Any) -> None:
        """Stay quiet: tests and benchmarks don't want a line per request."""


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    # A handler may be sleeping out a TIMEOUT fault; stopping must not wait for it.
    block_on_close = False
    allow_reuse_address = True
    # Benchmarks open many connections at once; the default backlog of 5 would stall them.
    request_queue_size = 128

    def __init__(self, address: tuple[str, int], app: WSGIApplication) -> None:
        self.app = app
        self.connections = 0
        self._open: set[socket.socket] = set()
        self._open_lock = threading.Lock()
        super().__init__(address, _Handler)

    def server_bind(self) -> None:
        # HTTPServer.server_bind looks up the host's FQDN, which can stall without DNS.
        socketserver.TCPServer.server_bind(self)
        host, port = self.server_address[:2]
        self.server_name = str(host)
        self.server_port = int(port)

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._open_lock:
            self.connections += 1
            self._open.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self._open_lock:
            self._open.discard(request)
        super().shutdown_request(request)

    def close_open_connections(self) -> None:
        """Shut idle keep-alive connections so their threads end and clients notice."""
        with self._open_lock:
            sockets = list(self._open)
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Stay quiet about clients that went away."""


class SandboxServer:
    """Serve a simulator over HTTP on ``host`` (default 127.0.0.1) in a daemon thread.

    ``port=0`` picks a free port; :attr:`url` is the API URL to configure. Without a
    ``simulator`` a new one is made from ``options`` (e.g. ``latency=0.02`` seconds per
    request, ``speed=10``); with one, the options are applied to it. Use as a context
    manager, or call :meth:`start` and :meth:`stop`.
    """

    def __init__(
        self,
        simulator: Simulator | None = None,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        **options: Unpack[SandboxOptions],
    ) -> None:
        #: The simulator answering this server's requests.
        self.simulator = simulator if simulator is not None else Simulator(**options)
        if simulator is not None and options:
            self.simulator.configure(**options)
        self.host = host
        self.port = port
        self._shutdown = threading.Event()
        self._httpd: _HTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def latency(self) -> float:
        """Seconds every request takes (the simulator's ``latency``)."""
        return self.simulator.latency

    @property
    def url(self) -> str:
        """The API URL, e.g. ``http://127.0.0.1:54321/api/v2/api.php``."""
        if self._httpd is None:
            raise RuntimeError("the sandbox server is not running; call start() first")
        return f"http://{self.host}:{self.port}{API_PATH}"

    @property
    def connection_count(self) -> int:
        """How many TCP connections the server has accepted (keep-alive keeps this low)."""
        return self._httpd.connections if self._httpd is not None else 0

    def close_connections(self) -> None:
        """Close every open connection, idle kept-alive ones included, and keep listening.

        What a server restart or its idle timeout does to a client's pooled connections:
        the next request must notice and connect afresh.
        """
        if self._httpd is not None:
            self._httpd.close_open_connections()

    def start(self) -> SandboxServer:
        """Start serving; returns the server. Starting a running server does nothing."""
        if self._httpd is None:
            self._shutdown.clear()
            app = make_wsgi_app(self.simulator, shutdown=self._shutdown)
            self._httpd = _HTTPServer((self.host, self.port), app)
            self.port = self._httpd.server_port
            self._thread = threading.Thread(
                target=self._httpd.serve_forever,
                kwargs={"poll_interval": 0.05},
                name=f"smsfly-sandbox-{self.port}",
                daemon=True,
            )
            self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and close every connection. Safe to call twice."""
        httpd, self._httpd = self._httpd, None
        if httpd is None:
            return
        self._shutdown.set()  # wakes handlers sleeping out a TIMEOUT
        httpd.shutdown()
        httpd.close_open_connections()
        httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> SandboxServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        where = f"http://{self.host}:{self.port}" if self._httpd else "stopped"
        return f"<SandboxServer {where} {self.simulator!r}>"


def main(argv: Sequence[str] | None = None) -> int:
    """Serve the sandbox until interrupted (the ``python -m`` entry point)."""
    parser = argparse.ArgumentParser(
        prog="python -m django_smsfly.backends.sandbox_server",
        description="Serve the SMS-fly sandbox over HTTP until Ctrl-C (SIGINT) or SIGTERM.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on")
    parser.add_argument("--port", type=int, default=8765, help="port (0 picks a free one)")
    parser.add_argument("--latency", type=float, default=0.0, help="seconds per request")
    parser.add_argument("--speed", type=float, default=1.0, help="how much faster statuses move")
    parser.add_argument("--api-key", default=None, help="accept only this key (default: any)")
    parser.add_argument("--rate-limit", type=float, default=None, help="requests per second")
    args = parser.parse_args(argv)
    try:
        server = SandboxServer(
            host=args.host,
            port=args.port,
            latency=args.latency,
            speed=args.speed,
            api_key=args.api_key,
            rate_limit=args.rate_limit,
        )
    except (TypeError, ValueError) as error:
        parser.error(str(error))
    with server:
        out = sys.stdout
        out.write(f"SMS-fly sandbox serving at {server.url}  (Ctrl-C to stop)\n")
        out.write("Test numbers: " + ", ".join(f"{n} {o.value}" for o, n in TEST_NUMBERS.items()))
        out.write("\n")
        out.flush()
        stop = threading.Event()

        def on_signal(signum: int, frame: object) -> None:
            stop.set()

        # Set explicitly: a process started with SIGINT ignored (nohup, "&" in a script,
        # some CI runners) would otherwise never stop on it, and SIGTERM is what service
        # managers send.
        signal.signal(signal.SIGINT, on_signal)
        signal.signal(signal.SIGTERM, on_signal)
        while not stop.wait(0.5):
            pass
        out.write("\nstopped\n")
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
