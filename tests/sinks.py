"""Local receivers for alert tests: an SMTP sink and an HTTP receiver, each on 127.0.0.1 at a random
port, in a thread of the test process, stopped (socket closed) when the ``with`` block ends."""
from __future__ import annotations

import email
import json
import socketserver
import threading
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class _SmtpHandler(socketserver.StreamRequestHandler):
    """The part of SMTP (RFC 5321) a client needs to deliver one message: greeting, EHLO/HELO, MAIL,
    RCPT, DATA with dot-unstuffing, RSET, NOOP, QUIT."""

    def _reply(self, line: str) -> None:
        self.wfile.write(line.encode() + b"\r\n")
        self.wfile.flush()

    def handle(self) -> None:
        sink: SmtpSink = self.server.sink
        self._reply("220 127.0.0.1 coalchain test sink")
        sender, recipients = None, []
        while True:
            raw = self.rfile.readline()
            if not raw:
                return
            command = raw.decode("ascii", "replace").rstrip("\r\n")
            verb = command[:4].upper()
            if verb in ("EHLO", "HELO"):
                self._reply("250 127.0.0.1")
            elif verb == "MAIL":
                sender, recipients = command.split(":", 1)[1].strip().strip("<>"), []
                self._reply("250 OK")
            elif verb == "RCPT":
                recipients.append(command.split(":", 1)[1].strip().strip("<>"))
                self._reply("250 OK")
            elif verb == "DATA":
                self._reply("354 end with <CRLF>.<CRLF>")
                lines = []
                while True:
                    line = self.rfile.readline()
                    if line in (b".\r\n", b".\n", b""):
                        break
                    lines.append(line[1:] if line.startswith(b"..") else line)
                sink.messages.append((sender, recipients, email.message_from_bytes(b"".join(lines))))
                self._reply("250 OK queued")
            elif verb == "RSET":
                sender, recipients = None, []
                self._reply("250 OK")
            elif verb == "NOOP":
                self._reply("250 OK")
            elif verb == "QUIT":
                self._reply("221 bye")
                return
            else:
                self._reply("502 command not implemented")


class _LoopbackServer:
    """Serves ``self._server`` (bound to 127.0.0.1, random port) from a thread inside the ``with`` block."""

    def _serve(self, server: socketserver.BaseServer) -> None:
        self._server = server
        self.port = server.server_address[1]
        self._thread = threading.Thread(target=server.serve_forever, daemon=True)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()


class SmtpSink(_LoopbackServer):
    def __init__(self):
        self.messages: list[tuple[str, list[str], Message]] = []
        server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), _SmtpHandler)
        server.daemon_threads = True
        server.sink = self
        self._serve(server)


class HttpReceiver(_LoopbackServer):
    """Records every POST (path, headers, JSON body) and answers ``status``."""

    def __init__(self, status: int = 204):
        self.requests: list[dict] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - http.server's naming
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                receiver.requests.append({"path": self.path, "content_type": self.headers.get("Content-Type"),
                                          "json": json.loads(body)})
                self.send_response(receiver.status)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.status = status
        self._serve(ThreadingHTTPServer(("127.0.0.1", 0), Handler))
        self.url = f"http://127.0.0.1:{self.port}/hooks/T0KEN-secret"
