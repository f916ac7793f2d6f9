"""Model servers that misbehave, on 127.0.0.1: each answers /v1/chat/completions in one bad
way (`mode`), the way a broken proxy, a half-started server or a hostile host would."""

from __future__ import annotations

import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

GOOD = (
    b'data: {"choices": [{"delta": {"content": "Paris"}}]}\n\n'
    b'data: {"choices": [{"delta": {}, "finish_reason": "stop"}]}\n\ndata: [DONE]\n\n'
)


class BadModelServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, mode: str):
        super().__init__(("127.0.0.1", 0), _Handler)
        self.mode = mode
        self.requests = 0
        self.asked = threading.Event()  # a chat request has come in
        self.stop = threading.Event()  # ends the endless modes

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/v1"

    def close(self) -> None:
        self.stop.set()
        self.shutdown()
        self.server_close()


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: BadModelServer

    def log_message(self, format, *args):  # quiet
        pass

    def do_POST(self):  # noqa: N802 - the http.server name
        self.rfile.read(int(self.headers.get("content-length") or 0))
        if not self.path.endswith("/chat/completions"):
            self.send_response(404)
            self.send_header("content-length", "0")
            self.end_headers()
            return
        self.server.requests += 1
        self.server.asked.set()
        mode = self.server.mode
        if mode == "pings":  # keep-alive comments only, forever
            self._stream(lambda: b": ping\n\n")
        elif mode == "no-newline":  # bytes that never end a line, forever
            self._stream(lambda: b"x" * 512)
        elif mode == "silent":  # headers, then nothing at all
            self._stream(lambda: b"")
        elif mode == "huge":  # a well-formed stream that goes on past any answer's size
            chunk = b'data: {"choices": [{"delta": {"content": "' + b"w" * 4000 + b'"}}]}\n\n'
            self._stream(lambda: chunk, pause=0)
        else:
            bodies = {
                "list": b"data: []\n\n",
                "choice-number": b'data: {"choices": [1]}\n\n',
                "delta-string": b'data: {"choices": [{"delta": "hi"}]}\n\n',
                "not-json": b"data: {oops\n\n",
                "good": GOOD,
            }
            body = bodies[mode]
            self.send_response(200)
            self.send_header("content-type", "text/event-stream")
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    def _stream(self, piece, pause: float = 0.05) -> None:
        self.send_response(200)
        self.send_header("content-type", "text/event-stream")
        self.end_headers()  # no length: the body ends when the connection does
        try:
            while not self.server.stop.is_set():
                data = piece()
                if data:
                    self.wfile.write(data)
                    self.wfile.flush()
                if pause:
                    time.sleep(pause)
        except OSError:  # the client hung up: what a bounded client does
            pass
        self.close_connection = True


def start(mode: str) -> BadModelServer:
    server = BadModelServer(mode)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server
