"""llama-cpp-python's own OpenAI-compatible server, started for tests on a free port."""

from __future__ import annotations

import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest

SERVER_START_SECONDS = 120.0


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextmanager
def running_llama_server(model: Path, log_path: Path, n_ctx: int,
                         chat_format: str | None = None) -> Iterator[str]:
    """The server's address (without /v1) while it runs; stopped afterwards. Its chat
    endpoint writes messages in `chat_format` (one of llama-cpp-python's), else in the
    file's own template, else in its fallback (llama-2)."""
    port = free_port()
    command = [sys.executable, "-m", "llama_cpp.server", "--model", str(model),
               "--host", "127.0.0.1", "--port", str(port), "--n_ctx", str(n_ctx),
               "--n_threads", "2"]
    if chat_format:
        command += ["--chat_format", chat_format]
    with log_path.open("wb") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_until_ready(process, f"http://127.0.0.1:{port}/v1/models", log_path)
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def wait_until_ready(process: subprocess.Popen, models_url: str, log_path: Path) -> None:
    deadline = time.monotonic() + SERVER_START_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"llama_cpp.server exited with {process.returncode}:\n"
                        + log_path.read_text(errors="replace")[-3000:])
        try:
            if httpx.get(models_url, timeout=1.0).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.25)
    pytest.fail(f"llama_cpp.server did not answer within {SERVER_START_SECONDS:g} s:\n"
                + log_path.read_text(errors="replace")[-3000:])


class QuietHandler(BaseHTTPRequestHandler):
    """A test server's request handler: JSON answers, no log lines."""

    def reply(self, status: int, data: bytes) -> None:
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            pass

    def log_message(self, *args: object) -> None:
        pass


def serve(handler: type[BaseHTTPRequestHandler]) -> tuple[ThreadingHTTPServer, str]:
    """A server on a free local port, answering in a thread; its address without /v1."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}"


class Proxy:
    """A small HTTP proxy in front of a server, started in a test: it records the path of
    every request and answers 404 to the paths in `refuse`, as a server without that
    endpoint does (a chat-only server refuses `/v1/completions`)."""

    def __init__(self, upstream: str, refuse: tuple[str, ...] = ()) -> None:
        self.paths: list[str] = []
        proxy = self

        class Handler(QuietHandler):
            def do_GET(self) -> None:
                self.forward("GET")

            def do_POST(self) -> None:
                self.forward("POST")

            def forward(self, method: str) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                proxy.paths.append(self.path)
                if self.path in refuse:
                    self.reply(404, b'{"detail": "Not Found"}')
                    return
                answer = httpx.request(method, upstream + self.path, content=body,
                                       headers={"Content-Type": "application/json"},
                                       timeout=600)
                self.reply(answer.status_code, answer.content)

        self._server, self.url = serve(Handler)

    def posted(self) -> set[str]:
        return {path for path in self.paths if path != "/v1/models"}

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


@contextmanager
def proxy(upstream: str, refuse: tuple[str, ...] = ()) -> Iterator[Proxy]:
    started = Proxy(upstream, refuse)
    try:
        yield started
    finally:
        started.close()
