#!/usr/bin/python3
"""A scripted upstream for the adversarial suite: a TLS server that answers
each request with crafted bytes chosen by the request (the `x-script`
header, else the path without its leading slash and query), and logs what
happens to every connection, one JSON object per line:

    {"event": "open",    "conn": N}
    {"event": "request", "conn": N, "n": K, "script": S, "method": M, "path": P, "body": B}
    {"event": "closed",  "conn": N, "how": "close_notify" | "fin" | "reset" | "by_script" | "error"}

so a test sees whether veild reused a connection (several requests on one
conn) and that it closed one after a bad response ("closed" with how !=
by_script).

usage: scripted_upstream.py --listen ADDR:PORT --cert CRT:KEY --log FILE
"""

import argparse
import json
import re
import socket
import ssl
import struct
import sys
import threading
import time

LOCK = threading.Lock()
LOG = None
COUNTER = [0]
TOKEN = re.compile(r"\b[A-Z][A-Z0-9_]*_[0-9]{3,}\b")


def log(**entry):
    with LOCK, open(LOG, "a") as f:
        f.write(json.dumps(entry) + "\n")


def head(status_line, *fields):
    return (status_line + "\r\n" + "".join(f + "\r\n" for f in fields) + "\r\n").encode("latin-1")


def sse(event, data):
    return f"event: {event}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n".encode()


def chunk(b):
    return f"{len(b):x}\r\n".encode() + b + b"\r\n"


OK = head("HTTP/1.1 200 OK", "Content-Type: text/plain", "Content-Length: 2") + b"ok"

# Responses that must never reach the client as if they were fine: each is
# framing a proxy must refuse (veild: 502, connection not reused).
BAD_HEADS = {
    "cl-te": head("HTTP/1.1 200 OK", "Content-Length: 5", "Transfer-Encoding: chunked") + b"0\r\n\r\n",
    "te-cl": head("HTTP/1.1 200 OK", "Transfer-Encoding: chunked", "Content-Length: 5") + b"0\r\n\r\n",
    "two-cl": head("HTTP/1.1 200 OK", "Content-Length: 2", "Content-Length: 3") + b"okk",
    "dup-cl": head("HTTP/1.1 200 OK", "Content-Length: 2", "Content-Length: 2") + b"ok",
    "cl-list": head("HTTP/1.1 200 OK", "Content-Length: 2, 2") + b"ok",
    "xchunked": head("HTTP/1.1 200 OK", "Transfer-Encoding: xchunked") + b"0\r\n\r\n",
    "chunked-chunked": head("HTTP/1.1 200 OK", "Transfer-Encoding: chunked, chunked") + b"0\r\n\r\n",
    "gzip-te": head("HTTP/1.1 200 OK", "Transfer-Encoding: gzip") + b"ok",
    "space-name": head("HTTP/1.1 200 OK", "Bad Name: x", "Content-Length: 2") + b"ok",
    "space-colon": head("HTTP/1.1 200 OK", "Content-Length : 2") + b"ok",
    "nul-name": head("HTTP/1.1 200 OK", "X\x00Y: z", "Content-Length: 2") + b"ok",
    "nul-value": head("HTTP/1.1 200 OK", "X-A: a\x00b", "Content-Length: 2") + b"ok",
    "obs-fold": head("HTTP/1.1 200 OK", "X-A: a", " folded", "Content-Length: 2") + b"ok",
    "bare-lf": b"HTTP/1.1 200 OK\nContent-Length: 2\n\nok",
    "status-99": head("HTTP/1.1 99 Odd", "Content-Length: 2") + b"ok",
    "status-1000": head("HTTP/1.1 1000 Odd", "Content-Length: 2") + b"ok",
    "not-http": b"hello, this is not HTTP\r\n\r\n",
    "http2-frame": b"\x00\x00\x12\x04\x00\x00\x00\x00\x00" + b"\x00" * 18,
    "switching": head("HTTP/1.1 101 Switching Protocols", "Upgrade: websocket", "Connection: upgrade"),
    "te-204": head("HTTP/1.1 204 No Content", "Transfer-Encoding: chunked") + b"0\r\n\r\n",
    "huge-head": head("HTTP/1.1 200 OK", "X-Big: " + "a" * 70000, "Content-Length: 2") + b"ok",
    "many-fields": head("HTTP/1.1 200 OK", *[f"X-F{i}: v" for i in range(150)], "Content-Length: 2") + b"ok",
}

# Bad framing after a good head: the client already has the head, so only
# an abnormal end can tell it the body is broken.
BAD_BODIES = {
    "bad-chunk-size": head("HTTP/1.1 200 OK", "Transfer-Encoding: chunked") + b"zz\r\nok\r\n0\r\n\r\n",
    "chunk-overflow": head("HTTP/1.1 200 OK", "Transfer-Encoding: chunked") + b"ffffffffffffffffff1\r\nok\r\n",
    "chunk-no-crlf": head("HTTP/1.1 200 OK", "Transfer-Encoding: chunked") + b"2\r\nokXX0\r\n\r\n",
    "chunk-bare-lf": head("HTTP/1.1 200 OK", "Transfer-Encoding: chunked") + b"2\nok\n0\n\n",
}


def sse_events(tokens, count):
    yield sse("message_start", {"type": "message_start", "message": {
        "id": "msg_s", "type": "message", "role": "assistant", "content": [], "model": "x",
        "stop_reason": None, "usage": {"input_tokens": 1, "output_tokens": 1}}})
    yield sse("content_block_start", {"type": "content_block_start", "index": 0,
                                      "content_block": {"type": "text", "text": ""}})
    for i in range(count):
        yield sse("content_block_delta", {"type": "content_block_delta", "index": 0,
                                          "delta": {"type": "text_delta", "text": f"part {i} {tokens} "}})


class Conn:
    def __init__(self, tls, raw, n):
        self.tls, self.raw, self.n = tls, raw, n
        self.buf = b""

    def recv(self):
        data = self.tls.recv(65536)
        if not data:
            raise EOFError("close_notify")
        self.buf += data

    def read_request(self):
        while b"\r\n\r\n" not in self.buf:
            self.recv()
        end = self.buf.index(b"\r\n\r\n")
        lines = self.buf[:end].decode("latin-1").split("\r\n")
        self.buf = self.buf[end + 4:]
        method, target, _ = lines[0].split(" ", 2)
        headers = {}
        for h in lines[1:]:
            k, v = h.split(":", 1)
            headers[k.strip().lower()] = v.strip()
        if target == "/stall-body":  # takes the head, then never reads the body (TCP backpressure to veild)
            log(event="request", conn=self.n, n=0, script="stall-body", method=method, path=target, body="")
            while True:
                time.sleep(1)
        body = b""
        if headers.get("transfer-encoding", "").lower() == "chunked":
            while True:
                while b"\r\n" not in self.buf:
                    self.recv()
                line, self.buf = self.buf.split(b"\r\n", 1)
                size = int(line.split(b";")[0], 16)
                while len(self.buf) < size + 2:
                    self.recv()
                body += self.buf[:size]
                self.buf = self.buf[size + 2:]
                if size == 0:
                    break
        else:
            n = int(headers.get("content-length", "0"))
            while len(self.buf) < n:
                self.recv()
            body, self.buf = self.buf[:n], self.buf[n:]
        return method, target, headers, body

    def send(self, data):
        self.tls.sendall(data)

    def reset(self):
        self.raw.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.raw.close()

    def fin(self):
        """TCP FIN without close_notify (a truncation)."""
        self.raw.shutdown(socket.SHUT_WR)
        time.sleep(0.5)
        self.raw.close()

    def close_notify_and_fin(self):
        try:
            self.tls.unwrap()
        except (OSError, ssl.SSLError):
            pass
        self.raw.close()


def answer(c, script, body):
    """Sends the scripted answer. Returns False when the script ended the connection."""
    tokens = " ".join(dict.fromkeys(TOKEN.findall(body.decode("utf-8", "replace"))))
    if script == "ok":
        c.send(OK)
        return True
    if script in BAD_HEADS:
        c.send(BAD_HEADS[script])
        return True
    if script in BAD_BODIES:
        c.send(BAD_BODIES[script])
        return True
    if script == "extra-bytes":  # a complete response, then a smuggled second one
        c.send(OK + head("HTTP/1.1 200 OK", "Content-Length: 8") + b"smuggled")
        return True
    if script == "slow":  # a response whose body takes a second: its head is out long before its end
        c.send(head("HTTP/1.1 200 OK", "Content-Type: text/plain", "Content-Length: 200") + b"s" * 100)
        time.sleep(1.0)
        c.send(b"s" * 100)
        return True
    if script == "hang":  # never answers (veild: response timeout, 504); sees the close
        while True:
            c.recv()
    if script in ("reset-mid-length", "fin-mid-length", "notify-mid-length"):
        c.send(head("HTTP/1.1 200 OK", "Content-Type: text/plain", "Content-Length: 1000") + b"x" * 100)
        time.sleep(0.3)
        {"reset": c.reset, "fin": c.fin, "notify": c.close_notify_and_fin}[script.split("-")[0]]()
        return False
    if script in ("reset-mid-chunked", "fin-mid-chunked", "notify-mid-chunked"):
        c.send(head("HTTP/1.1 200 OK", "Content-Type: text/plain", "Transfer-Encoding: chunked") + chunk(b"x" * 100))
        time.sleep(0.3)
        {"reset": c.reset, "fin": c.fin, "notify": c.close_notify_and_fin}[script.split("-")[0]]()
        return False
    if script in ("until-close-notify", "until-close-fin"):  # body delimited by the close
        c.send(head("HTTP/1.1 200 OK", "Content-Type: text/plain", "Connection: close") + b"y" * 100)
        time.sleep(0.3)
        (c.close_notify_and_fin if script.endswith("notify") else c.fin)()
        return False
    if script in ("reset-mid-sse", "fin-mid-sse", "notify-mid-sse"):
        c.send(head("HTTP/1.1 200 OK", "Content-Type: text/event-stream", "Transfer-Encoding: chunked"))
        for ev in sse_events(tokens, 5):
            c.send(chunk(ev))
            time.sleep(0.05)
        time.sleep(0.3)
        {"reset": c.reset, "fin": c.fin, "notify": c.close_notify_and_fin}[script.split("-")[0]]()
        return False
    if script == "sse-ok":  # the same stream, ended properly
        c.send(head("HTTP/1.1 200 OK", "Content-Type: text/event-stream", "Transfer-Encoding: chunked"))
        for ev in sse_events(tokens, 5):
            c.send(chunk(ev))
        c.send(chunk(sse("message_stop", {"type": "message_stop"})) + b"0\r\n\r\n")
        return True
    c.send(head("HTTP/1.1 404 Not Found", "Content-Length: 0"))
    return True


def serve(ctx, raw, n):
    log(event="open", conn=n)
    how = "error"
    try:
        raw.settimeout(60)
        tls = ctx.wrap_socket(raw, server_side=True)
        c = Conn(tls, raw, n)
        k = 0
        while True:
            method, target, headers, body = c.read_request()
            k += 1
            path = target.split("?", 1)[0]
            script = headers.get("x-script") or path.lstrip("/")
            log(event="request", conn=n, n=k, script=script, method=method, path=target,
                body=body.decode("utf-8", "replace")[:2000])
            if not answer(c, script, body):
                how = "by_script"
                break
    except EOFError:
        how = "close_notify"
    except ssl.SSLEOFError:
        how = "fin"
    except ConnectionResetError:
        how = "reset"
    except (OSError, ssl.SSLError, ValueError) as e:
        how = "error: " + str(e)[:80]
    log(event="closed", conn=n, how=how)
    try:
        raw.close()
    except OSError:
        pass


def main():
    global LOG
    ap = argparse.ArgumentParser()
    ap.add_argument("--listen", required=True)
    ap.add_argument("--cert", required=True)
    ap.add_argument("--log", required=True)
    a = ap.parse_args()
    LOG = a.log
    crt, key = a.cert.split(":")
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(crt, key)
    ctx.set_alpn_protocols(["http/1.1"])
    host, port = a.listen.rsplit(":", 1)
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((host, int(port)))
    s.listen(128)
    while True:
        raw, _ = s.accept()
        raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        COUNTER[0] += 1
        threading.Thread(target=serve, args=(ctx, raw, COUNTER[0]), daemon=True).start()


if __name__ == "__main__":
    sys.exit(main())
