#!/usr/bin/python3
"""A mock of the Anthropic Messages API for veil's lab and tests.

It serves HTTPS with its own test CA, records every request it receives (one
JSON line per request: method, path, headers, body — after TLS, i.e. exactly
what left veild), and answers POST /v1/messages by echoing every veil token
it finds in the request: as text and as tool_use input, in JSON or (with
"stream": true) as a Server-Sent Event stream whose deltas split the tokens
across events.

usage: mock_api.py --listen ADDR:PORT [--listen ...] --cert CRT:KEY
                   [--sni NAME=CRT:KEY ...] --record FILE
"""

import argparse
import json
import re
import socket
import socketserver
import ssl
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

TOKEN = re.compile(r"\b[A-Z][A-Z0-9_]*_[0-9]{3,}\b")
LOCK = threading.Lock()


def sse(event, data):
    return f"event: {event}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n".encode()


def pieces(text, n):
    return [text[i:i + n] for i in range(0, len(text), n)] or [""]


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "mock-anthropic/1"
    # Headers and body go out in separate writes: without TCP_NODELAY the
    # second waits for the peer's delayed ACK (40 ms per response).
    disable_nagle_algorithm = True

    def log_message(self, fmt, *args):  # quiet
        pass

    def record(self, body):
        entry = {"method": self.command, "path": self.path, "local": self.connection.getsockname()[0],
                 "headers": {k.lower(): v for k, v in self.headers.items()},
                 "body": body.decode("utf-8", "replace")}
        with LOCK, open(self.server.record_path, "a") as f:
            f.write(json.dumps(entry) + "\n")

    def read_body(self):
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            data = b""
            while True:
                size = int(self.rfile.readline().split(b";")[0], 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return data
                data += self.rfile.read(size)
                self.rfile.readline()
        n = int(self.headers.get("Content-Length", "0"))
        return self.rfile.read(n) if n else b""

    def send_json(self, status, obj):
        body = json.dumps(obj).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        self.record(b"")
        body = b"hello from the mock upstream\n"
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("X-Mock-Path", self.path)  # pipelined answers can be told apart
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self):
        body = self.read_body()
        self.record(body)
        if self.path != "/v1/messages":
            self.send_json(200, {"ok": True, "bytes": len(body)})
            return
        try:
            req = json.loads(body or b"{}")
        except ValueError:
            self.send_json(400, {"type": "error", "error": {"type": "invalid_request_error"}})
            return
        tokens = list(dict.fromkeys(TOKEN.findall(body.decode("utf-8", "replace"))))
        text = "Found: " + " ".join(tokens) + "."
        tool_input = {"instance_id": tokens[0] if tokens else "", "all": tokens}
        if not req.get("stream"):
            self.send_json(200, {
                "id": "msg_mock", "type": "message", "role": "assistant", "model": req.get("model", "x"),
                "content": [{"type": "text", "text": text},
                            {"type": "tool_use", "id": "toolu_1", "name": "describe", "input": tool_input}],
                "stop_reason": "tool_use", "usage": {"input_tokens": 1, "output_tokens": 1}})
            return
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()

        delay = float(req.get("mock_delay", 0)) / 10  # spread over the stream

        def chunk(b):
            self.wfile.write(f"{len(b):x}\r\n".encode() + b + b"\r\n")
            self.wfile.flush()
            if delay and b.startswith((b"event: content_block_stop", b"event: message_start")):
                time.sleep(delay * 3)

        chunk(sse("message_start", {"type": "message_start", "message": {
            "id": "msg_mock", "type": "message", "role": "assistant", "content": [], "model": "x",
            "stop_reason": None, "usage": {"input_tokens": 1, "output_tokens": 1}}}))
        chunk(sse("content_block_start", {"type": "content_block_start", "index": 0,
                                          "content_block": {"type": "text", "text": ""}}))
        for p in pieces(text, 3):  # splits tokens across deltas
            chunk(sse("content_block_delta", {"type": "content_block_delta", "index": 0,
                                              "delta": {"type": "text_delta", "text": p}}))
        # "mock_sse_bytes": N adds about N bytes of text deltas, each with
        # the tokens again, sent as fast as the reader takes them (a large
        # stream for backpressure tests).
        filler, sent = " " + " ".join(tokens) + " " + "x" * 4000, 0
        while sent < int(req.get("mock_sse_bytes", 0)):
            ev = sse("content_block_delta", {"type": "content_block_delta", "index": 0,
                                             "delta": {"type": "text_delta", "text": filler}})
            chunk(ev)
            sent += len(ev)
        chunk(sse("content_block_stop", {"type": "content_block_stop", "index": 0}))
        chunk(sse("content_block_start", {"type": "content_block_start", "index": 1, "content_block": {
            "type": "tool_use", "id": "toolu_1", "name": "describe", "input": {}}}))
        for p in pieces(json.dumps(tool_input), 5):
            chunk(sse("content_block_delta", {"type": "content_block_delta", "index": 1,
                                              "delta": {"type": "input_json_delta", "partial_json": p}}))
        chunk(sse("content_block_stop", {"type": "content_block_stop", "index": 1}))
        chunk(sse("message_delta", {"type": "message_delta", "delta": {"stop_reason": "tool_use"},
                                    "usage": {"output_tokens": 2}}))
        chunk(sse("message_stop", {"type": "message_stop"}))
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()


class Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def server_bind(self):
        # HTTPServer.server_bind asks socket.getfqdn() for a name, a reverse
        # lookup that can stall for seconds inside a lab namespace.
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = self.server_address[:2]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--listen", action="append", required=True)
    ap.add_argument("--cert", required=True)
    ap.add_argument("--sni", action="append", default=[])
    ap.add_argument("--record", required=True)
    a = ap.parse_args()

    def context(spec):
        crt, key = spec.split(":")
        c = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        c.load_cert_chain(crt, key)
        c.set_alpn_protocols(["http/1.1"])
        return c

    default = context(a.cert)
    by_name = {}
    for s in a.sni:
        name, spec = s.split("=", 1)
        by_name[name] = context(spec)

    def pick(sock, name, _ctx):
        if name in by_name:
            sock.context = by_name[name]

    default.sni_callback = pick
    servers = []
    for listen in a.listen:
        host, port = listen.rsplit(":", 1)
        host = host.strip("[]")
        cls = type("S", (Server,), {"address_family": socket.AF_INET6 if ":" in host else socket.AF_INET})
        srv = cls((host, int(port)), Handler)
        srv.record_path = a.record
        srv.socket = default.wrap_socket(srv.socket, server_side=True)
        servers.append(srv)
    for srv in servers[1:]:
        threading.Thread(target=srv.serve_forever, daemon=True).start()
    servers[0].serve_forever()


if __name__ == "__main__":
    sys.exit(main())
