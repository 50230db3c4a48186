"""Shared pieces of the adversarial suite (test_adv_*.py, issue 5).

The appliance lab: veild on a gateway with the rules `veil-iptables install`
renders (style gateway, TPROXY), the way deploy/lab runs it:

    [cli ns] --eth0-- [gw ns: veild :15002, rules] --eth1-- [up ns]
    198.18.1.2        198.18.1.1 | 198.18.2.1              198.18.2.2   mock Anthropic API (mock_api.py)
                                                           198.18.2.3   scripted upstream (scripted_upstream.py)
                                                           198.18.2.10+ whatever a module adds

Clients are sockets of this very process: `inside(ns)` switches the calling
thread into a namespace just long enough to create a socket there (a socket
keeps its namespace), so every byte a case sends is exact and every way a
connection can end is seen — close_notify, a FIN without it, an RST, an
alert. `TlsClient` does TLS over memory BIOs for that reason.
"""

import contextlib
import ctypes
import json
import os
import re
import signal
import socket
import ssl
import struct
import subprocess
import sys
import time

import lab

SCRIPTED = os.path.join(lab.HERE, "scripted_upstream.py")
HOST = "api.anthropic.com"
CLI4, GW_CLI, GW_UP = "198.18.1.2", "198.18.1.1", "198.18.2.1"
API4, SCRIPT4 = "198.18.2.2", "198.18.2.3"
LISTEN_PORT = 15002

# A sanitizer build keeps freed memory in ASan's quarantine (256 MiB by
# default), which would read as growth in the memory checks: veild runs with
# a small one there. Every ASan check still applies.
SANITIZED = "asan" in subprocess.run(["ldd", lab.VEILD], capture_output=True, text=True).stdout
VEILD_ENV = dict(os.environ)
if SANITIZED:
    VEILD_ENV["ASAN_OPTIONS"] = (os.environ.get("ASAN_OPTIONS", "") +
                                 ":quarantine_size_mb=4:thread_local_quarantine_size_kb=256").lstrip(":")

# ---------------------------------------------------------------- namespaces

_libc = ctypes.CDLL(None, use_errno=True)
CLONE_NEWNET = 0x40000000


@contextlib.contextmanager
def inside(ns):
    """The calling thread is in network namespace `ns` for the block."""
    target = os.open(f"/run/netns/{ns.name}", os.O_RDONLY)
    own = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
    try:
        if _libc.setns(target, CLONE_NEWNET) != 0:
            raise OSError(ctypes.get_errno(), f"setns {ns.name}")
        try:
            yield
        finally:
            if _libc.setns(own, CLONE_NEWNET) != 0:
                raise OSError(ctypes.get_errno(), "setns back")
    finally:
        os.close(target)
        os.close(own)


def tcp(ns, host, port, timeout=10.0):
    """A TCP connection from `ns` (connected in this process)."""
    with inside(ns):
        s = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    s.settimeout(timeout)
    s.connect((host, port))
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s


def rst(sock):
    """Closes with an RST (SO_LINGER 0)."""
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


# ---------------------------------------------------------------- TLS client

class HandshakeFailed(Exception):
    def __init__(self, reason, raw):
        super().__init__(reason)
        self.reason = reason
        self.raw = raw  # every byte the server sent


class TlsClient:
    """TLS over memory BIOs on a socket of ours. `end` says how the
    connection ended once a read saw it: 'close_notify', 'fin' (TCP FIN
    without close_notify), 'reset', 'alert:<reason>' or 'timeout'."""

    def __init__(self, sock, ctx, sni):
        self.sock = sock
        self.incoming, self.outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
        self.obj = ctx.wrap_bio(self.incoming, self.outgoing, server_hostname=sni)
        self.raw = b""  # ciphertext received
        self.end = None
        self.tcp_end = None  # 'fin' or 'reset' once the socket itself ended

    def _flush(self):
        data = self.outgoing.read()
        if data:
            self.sock.sendall(data)

    def _fill(self, deadline):
        """One recv into the TLS input; False once the socket ended."""
        self.sock.settimeout(max(0.01, deadline - time.time()))
        try:
            data = self.sock.recv(65536)
        except ConnectionResetError:
            self.tcp_end = "reset"
            return False
        if not data:
            self.tcp_end = "fin"
            self.incoming.write_eof()
            return False
        if len(self.raw) < 65536:
            self.raw += data  # for a failed handshake: what it got (not a whole stream)
        self.incoming.write(data)
        return True

    def handshake(self, timeout=10.0):
        deadline = time.time() + timeout
        while True:
            try:
                self.obj.do_handshake()
                self._flush()
                return self
            except ssl.SSLWantReadError:
                self._flush()
                try:
                    alive = self._fill(deadline)
                except socket.timeout:
                    raise HandshakeFailed("timeout", self.raw)
                if not alive and self.tcp_end == "reset":
                    raise HandshakeFailed("reset", self.raw)
            except ssl.SSLError as e:
                raise HandshakeFailed(e.reason or str(e), self.raw)

    def send(self, data):
        """One write: up to 16 KiB of plaintext is one TLS record."""
        self.obj.write(data)
        self._flush()

    def close_notify(self):
        try:
            self.obj.unwrap()
        except (ssl.SSLWantReadError, ssl.SSLError):
            pass
        self._flush()

    def peer_der(self):
        return self.obj.getpeercert(binary_form=True)

    def read(self, timeout=5.0, until=None):
        """Plaintext until until(data) holds, the connection ends (self.end)
        or the time is up (end 'timeout')."""
        deadline = time.time() + timeout
        out = bytearray()  # appended in place: a stream of many MiB stays linear
        while True:
            try:
                while True:
                    chunk = self.obj.read(65536)
                    if not chunk:  # CPython reads a received close_notify as b""
                        self.end = "close_notify"
                        return bytes(out)
                    out += chunk
            except ssl.SSLWantReadError:
                pass
            except ssl.SSLZeroReturnError:
                self.end = "close_notify"
                return bytes(out)
            except ssl.SSLEOFError:
                self.end = self.tcp_end or "fin"
                return bytes(out)
            except ssl.SSLError as e:
                self.end = "alert:" + (e.reason or str(e))
                return bytes(out)
            if until is not None and until(out):
                return bytes(out)
            if self.tcp_end is not None:
                self.end = self.tcp_end
                return bytes(out)
            try:
                self._fill(deadline)
            except socket.timeout:
                self.end = "timeout"
                return bytes(out)

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


def client_context(cafile):
    ctx = ssl.create_default_context(cafile=cafile)
    ctx.set_alpn_protocols(["http/1.1"])
    return ctx


# ---------------------------------------------------------------- HTTP on the client side

class Response:
    def __init__(self, status, reason, headers, body, complete):
        self.status, self.reason, self.headers, self.body, self.complete = status, reason, headers, body, complete

    def header(self, name):
        for k, v in self.headers:
            if k.lower() == name.lower():
                return v
        return None

    def json(self):
        return json.loads(self.body)

    def error_type(self):
        try:
            return self.json()["error"]["type"]
        except (ValueError, KeyError, TypeError):
            return None

    def __repr__(self):
        return f"<{self.status} {self.headers} {self.body[:200]!r} complete={self.complete}>"


def parse_responses(data, eof=False):
    """Responses in `data` (bytes) in order; the last one may be incomplete
    (complete=False). `eof`: the connection ended after `data`."""
    out, pos = [], 0
    while pos < len(data):
        end = data.find(b"\r\n\r\n", pos)
        if end < 0:
            out.append(Response(None, "", [], data[pos:], False))
            break
        lines = data[pos:end].decode("latin-1").split("\r\n")
        parts = lines[0].split(" ", 2)
        status = int(parts[1])
        headers = [tuple(x.strip() for x in h.split(":", 1)) for h in lines[1:]]
        resp = Response(status, parts[2] if len(parts) > 2 else "", headers, b"", False)
        pos = end + 4
        if 100 <= status < 200:
            resp.complete = True
            out.append(resp)
            continue
        te = (resp.header("transfer-encoding") or "").lower()
        if te == "chunked":
            body = bytearray()
            while True:
                nl = data.find(b"\r\n", pos)
                if nl < 0:
                    break
                size = int(data[pos:nl].split(b";")[0], 16)
                if size == 0:
                    tend = data.find(b"\r\n", nl + 2)
                    if tend == nl + 2 or data[nl + 2:nl + 4] == b"\r\n":
                        pos = nl + 4
                        resp.complete = True
                    else:
                        pos = len(data)
                    break
                if len(data) < nl + 2 + size + 2:
                    body += data[nl + 2:nl + 2 + size]
                    pos = len(data)
                    break
                body += data[nl + 2:nl + 2 + size]
                pos = nl + 2 + size + 2
            resp.body = bytes(body)
        elif resp.header("content-length") is not None:
            n = int(resp.header("content-length"))
            resp.body = data[pos:pos + n]
            resp.complete = len(resp.body) == n
            pos += len(resp.body)
        else:
            resp.body = data[pos:]
            resp.complete = eof
            pos = len(data)
        out.append(resp)
        if not resp.complete:
            break
    return out


def complete_responses(n):
    """A read(until=...) predicate: n complete responses are in."""
    def done(data):
        rs = parse_responses(data)
        return len(rs) >= n and all(r.complete for r in rs[:n])
    return done


def request(method, path, body=b"", headers=None, host=HOST):
    if isinstance(body, str):
        body = body.encode()
    h = [("Host", host)]
    if body or method in ("POST", "PUT"):
        h.append(("Content-Length", str(len(body))))
    h += list((headers or {}).items())
    head = f"{method} {path} HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in h) + "\r\n"
    return head.encode() + body


def json_post(obj, path="/v1/messages", headers=None):
    hs = {"Content-Type": "application/json"}
    hs.update(headers or {})
    return request("POST", path, json.dumps(obj), hs)


# ---------------------------------------------------------------- the appliance

def logfmt(line):
    out = {}
    for m in re.finditer(r'(\w+)=("(?:[^"\\]|\\.)*"|\S*)', line):
        v = m.group(2)
        if v.startswith('"'):
            v = v[1:-1].replace('\\"', '"').replace("\\\\", "\\")
        out[m.group(1)] = v
    return out


class Appliance:
    """The lab above. `extra_up` adds addresses to the up namespace."""

    def __init__(self, scripted=True, extra_up=()):
        self.lab = L = lab.Lab()
        try:
            self.cli, self.gw, self.up = L.netns("cli"), L.netns("gw"), L.netns("up")
            L.veth(self.cli, "eth0", self.gw, "eth0")
            L.veth(self.gw, "eth1", self.up, "eth0")
            self.cli.sh(f"ip addr add {CLI4}/24 dev eth0 && ip route add default via {GW_CLI}")
            self.gw.sh(f"ip addr add {GW_CLI}/24 dev eth0 && ip addr add {GW_UP}/24 dev eth1 && "
                       "sysctl -qw net.ipv4.ip_forward=1 net.ipv4.conf.all.rp_filter=0 "
                       "net.ipv4.conf.default.rp_filter=0 net.ipv4.conf.eth0.rp_filter=0")
            addrs = [API4, SCRIPT4, *extra_up]
            self.up.sh(" && ".join(f"ip addr add {a}/24 dev eth0" if a.startswith("198.18.2.")
                                   else f"ip addr add {a}/32 dev lo" for a in addrs) +
                       f" && ip route add default via {GW_UP}")
            # The client resolves the target to the lab's API and nothing
            # else: a query to the machine's resolver would wander into the
            # lab (cli's default route) and time out; 127.0.0.1 refuses it.
            L.hosts(self.cli, {HOST: API4})
            with open(os.path.join("/etc/netns", self.cli.name, "resolv.conf"), "w") as f:
                f.write("nameserver 127.0.0.1\noptions timeout:1 attempts:1\n")
            self.pki = lab.Pki(L.dir)
            self.cert = self.pki.leaf(HOST)
            self.record = L.path("upstream.jsonl")
            self.mock = L.spawn(self.up, lab.PYTHON, lab.MOCK, "--listen", f"{API4}:443", "--cert",
                                ":".join(self.cert), "--record", self.record, log="mock.log")
            if scripted:
                self.script_log = L.path("scripted.jsonl")
                L.spawn(self.up, lab.PYTHON, SCRIPTED, "--listen", f"{SCRIPT4}:443", "--cert", ":".join(self.cert),
                        "--log", self.script_log, log="scripted.log")
                lab.wait_port(self.up, SCRIPT4, 443)
            lab.wait_port(self.up, API4, 443, proc=self.mock)
            self.ca = lab.make_lab_ca(L)
            self.ctx = client_context(f"{self.ca}/ca.pem")
            self.veild = None
            self.runs = 0
            self.rules = None
        except BaseException:
            L.close()
            raise

    # -- configuration and the daemon

    def write_config(self, extra="", max_body="8MiB", timeouts=None, limits=None, top=None):
        t = {"tls_handshake": "3s", "request_headers": "2s", "body_idle": "2s", "idle": "5s",
             "response": "5s", "stream_idle": "5s", "drain": "10s"}
        t.update(timeouts or {})
        cfg = [f'listeners:\n  - {{name: gw, mode: tproxy, address: "0.0.0.0:{LISTEN_PORT}"}}',
               f"ca:\n  cert: {self.ca}/ca.pem\n  key: {self.ca}/ca.key",
               f"upstream:\n  ca_file: {self.pki.ca}",
               f"targets:\n  - host: {HOST}\n    mask:\n      - {{method: POST, path: /v1/messages}}",
               f"masking:\n  packs: [aws]\n  on_unmaskable: block\n  max_body_bytes: {max_body}",
               "timeouts:\n" + "".join(f"  {k}: {v}\n" for k, v in t.items()).rstrip("\n"),
               "capture:\n  style: gateway\n  interfaces: [eth0]\n  ipv6: false"]
        if limits:
            cfg.append("limits:\n" + "".join(f"  {k}: {v}\n" for k, v in limits.items()).rstrip("\n"))
        for k, v in (top or {}).items():
            cfg.append(f"{k}: {v}")
        path = self.lab.path(f"veil-{self.runs}.yaml")
        with open(path, "w") as f:
            f.write("\n".join(cfg) + "\n" + extra)
        return path

    def install_rules(self, config):
        r = lab.run(lab.VEIL_IPTABLES, "install", "--config", config, "--netns", self.gw.name, check=False)
        if r.returncode != 0:
            raise RuntimeError("veil-iptables install: " + r.stdout + r.stderr)
        self.rules = config

    def start(self, nofile=None, **config):
        """Starts veild (after the previous one stopped) with write_config(**config);
        installs the rules on the first start."""
        self.runs += 1
        self.config = self.write_config(**config)
        if self.rules is None:
            self.install_rules(self.config)
        cmd = [lab.VEILD, "--config", self.config, "--workers", "2"]
        if nofile:
            cmd = ["prlimit", f"--nofile={nofile}:{nofile}", *cmd]
        self.log = f"veild-{self.runs}.log"
        out = open(self.lab.path(self.log), "wb")
        self.veild = self.gw.popen(*cmd, stdout=out, stderr=subprocess.STDOUT, env=VEILD_ENV)
        out.close()
        self.lab._procs.append(self.veild)
        # Its "started" line, not a probe connection: a connection to the
        # listener itself would be refused and counted.
        deadline = time.time() + 60
        while "event=started" not in self.log_text():
            if self.veild.poll() is not None:
                raise RuntimeError(f"veild exited with {self.veild.returncode}:\n{self.log_text()}")
            if time.time() > deadline:
                raise RuntimeError("veild did not start")
            time.sleep(0.05)
        return self.veild

    def stop(self, sig=signal.SIGTERM):
        """Stops veild; after SIGTERM it must exit 0 (a sanitizer report at
        exit, a hang in the drain, a crash all fail the test here)."""
        if self.veild is None:
            return None
        rc = self.lab.stop(self.veild, sig)
        self.veild = None
        if sig == signal.SIGTERM and rc != 0:
            raise AssertionError(f"veild exited {rc} after SIGTERM:\n" + self.log_text()[-3000:])
        return rc

    def close(self):
        try:
            self.stop()
        finally:
            self.lab.close()

    def log_text(self):
        with open(self.lab.path(self.log), errors="replace") as f:
            return f.read()

    def events(self, event=None):
        lines = [logfmt(line) for line in self.log_text().splitlines() if "event=" in line]
        return [x for x in lines if event is None or x.get("event") == event]

    def wait_event(self, event, count=1, timeout=10.0, where=None):
        deadline = time.time() + timeout
        while time.time() < deadline:
            found = [e for e in self.events(event) if where is None or where(e)]
            if len(found) >= count:
                return found
            time.sleep(0.05)
        raise AssertionError(f"no {count} {event} line(s) in {self.log} within {timeout}s")

    def metrics(self):
        """veild's counters (SIGHUP writes them to the log)."""
        before = len(self.events("metrics"))
        self.veild.send_signal(signal.SIGHUP)
        line = self.wait_event("metrics", count=before + 1)[-1]
        return {k: int(v) for k, v in (kv.split("=") for kv in line["summary"].split())}

    def memory(self):
        """{'VmRSS': kB, 'VmHWM': kB} of veild."""
        out = {}
        with open(f"/proc/{self.veild.pid}/status") as f:
            for line in f:
                k, _, v = line.partition(":")
                if k in ("VmRSS", "VmHWM"):
                    out[k] = int(v.split()[0])
        return out

    def reset_peak(self):
        """Starts a new VmHWM measurement (clear_refs 5 resets the peak RSS)."""
        with open(f"/proc/{self.veild.pid}/clear_refs", "w") as f:
            f.write("5")
        return self.memory()

    def records(self):
        return lab.records(self.record)

    def script_events(self):
        return lab.records(self.script_log)

    # -- clients

    def connect(self, dst=API4, port=443, sni=HOST, ctx=None, timeout=10.0):
        """A handshaken TLS client from cli to dst:port (captured by veild)."""
        s = tcp(self.cli, dst, port, timeout)
        return TlsClient(s, ctx or self.ctx, sni).handshake(timeout)

    def exchange(self, raw, n=1, dst=API4, wait_end=3.0):
        """Sends `raw` in one write on a new connection and reads n complete
        responses, then waits up to wait_end seconds for the connection to
        end (wait_end 0: don't). Returns (responses, client)."""
        c = self.connect(dst)
        c.send(raw)
        data = c.read(timeout=10, until=complete_responses(n))
        if wait_end and c.end is None:
            data += c.read(timeout=wait_end)
        return parse_responses(data, eof=c.end is not None), c

    def curl(self, *args, dst=API4, timeout=20):
        return self.cli.exec("curl", "-sS", "--max-time", str(timeout), "--cacert", f"{self.ca}/ca.pem",
                             "--resolve", f"{HOST}:443:{dst}", *args, check=False)

    def healthy(self):
        """A normal masked request works end to end."""
        body = {"model": "m", "max_tokens": 8, "messages": [{"role": "user", "content": "host i-0123456789abcdef0"}]}
        rs, c = self.exchange(json_post(body), wait_end=0)
        c.close()
        return len(rs) == 1 and rs[0].status == 200 and b"i-0123456789abcdef0" in rs[0].body


def strings_of(value):
    """Every key and string value in a JSON document."""
    if isinstance(value, dict):
        for k, v in value.items():
            yield k
            yield from strings_of(v)
    elif isinstance(value, list):
        for v in value:
            yield from strings_of(v)
    elif isinstance(value, str):
        yield value


def quiet(fn, *a, **kw):
    """Runs fn, returning its exception instead of raising it."""
    try:
        return fn(*a, **kw)
    except Exception as e:  # noqa: BLE001 (reported by the caller)
        return e


def say(msg):
    sys.stderr.write(msg + "\n")
    sys.stderr.flush()


# ---------------------------------------------------------------- hand-made ClientHellos

def client_hello(sni=None, alpn=None):
    """A TLS 1.2 ClientHello record (ECDHE-ECDSA/RSA AEAD suites, P-256 and
    X25519) whose server_name is the raw bytes `sni` — anything, including
    what no TLS library would send (an IP literal, a 300-byte name). A TLS
    1.2 server answers it with its Certificate in the clear."""
    def ext(kind, body):
        return struct.pack("!HH", kind, len(body)) + body

    exts = b""
    if sni is not None:
        entry = b"\x00" + struct.pack("!H", len(sni)) + sni
        exts += ext(0, struct.pack("!H", len(entry)) + entry)
    exts += ext(10, struct.pack("!H", 4) + b"\x00\x17\x00\x1d")        # supported_groups: P-256, X25519
    exts += ext(11, b"\x01\x00")                                        # ec_point_formats: uncompressed
    exts += ext(13, struct.pack("!H", 6) + b"\x04\x03\x08\x04\x04\x01")  # signature_algorithms
    if alpn:
        names = b"".join(bytes([len(a)]) + a.encode() for a in alpn)
        exts += ext(16, struct.pack("!H", len(names)) + names)
    suites = b"\xc0\x2b\xc0\x2f\xc0\x2c\xc0\x30"
    body = (b"\x03\x03" + os.urandom(32) + b"\x00" + struct.pack("!H", len(suites)) + suites + b"\x01\x00"
            + struct.pack("!H", len(exts)) + exts)
    hs = b"\x01" + struct.pack("!I", len(body))[1:] + body
    return b"\x16\x03\x01" + struct.pack("!H", len(hs)) + hs


def tls_records(data):
    """(content type, payload) of the complete records in `data`."""
    out, pos = [], 0
    while pos + 5 <= len(data):
        n = struct.unpack("!H", data[pos + 3:pos + 5])[0]
        if pos + 5 + n > len(data):
            break
        out.append((data[pos], data[pos + 5:pos + 5 + n]))
        pos += 5 + n
    return out


def certificates_in(data):
    """DER certificates of a TLS 1.2 Certificate message among `data`'s records."""
    hs = b"".join(p for t, p in tls_records(data) if t == 22)
    pos = 0
    while pos + 4 <= len(hs):
        kind, n = hs[pos], int.from_bytes(hs[pos + 1:pos + 4], "big")
        msg = hs[pos + 4:pos + 4 + n]
        if kind == 11:
            certs, i = [], 3
            while i + 3 <= len(msg):
                m = int.from_bytes(msg[i:i + 3], "big")
                certs.append(msg[i + 3:i + 3 + m])
                i += 3 + m
            return certs
        pos += 4 + n
    return []


def raw_exchange(ns, dst, port, data, timeout=3.0):
    """Sends `data` on a plain TCP connection; returns (bytes received, end)
    where end is 'fin', 'reset' or 'timeout'."""
    s = tcp(ns, dst, port, timeout)
    s.sendall(data)
    got, end, deadline = b"", None, time.time() + timeout
    while end is None:
        s.settimeout(max(0.01, deadline - time.time()))
        try:
            b = s.recv(65536)
            if not b:
                end = "fin"
            got += b
            if certificates_in(got):  # enough to tell whose server answered
                end = "answered"
        except ConnectionResetError:
            end = "reset"
        except socket.timeout:
            end = "timeout"
    s.close()
    return got, end


def x509_text(der):
    r = subprocess.run(["openssl", "x509", "-inform", "DER", "-noout", "-text", "-nameopt", "RFC2253"],
                       input=der, capture_output=True, check=True)
    return r.stdout.decode()


def x509_field(der_or_pem, *args, pem=False):
    r = subprocess.run(["openssl", "x509", "-inform", "PEM" if pem else "DER", "-noout", *args],
                       input=der_or_pem, capture_output=True, check=True)
    return r.stdout.decode().strip()
