"""Network namespaces, certificates and processes for veil's integration tests.

Every namespace gets a unique name and is removed on exit, also on failure
(atexit + explicit close). Only 198.18.0.0/15 and fd00::/8 are used inside
them; nothing touches the machine's own namespace. Processes are ended by
their pid, never by name.
"""

import atexit
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time

BUILD = os.environ.get("VEIL_BUILD", os.path.join(os.path.dirname(__file__), "..", "..", "build"))
VEILD = os.path.join(BUILD, "daemon", "veild", "veild")
VEILCTL = os.path.join(BUILD, "daemon", "veilctl", "veilctl")
VEIL_IPTABLES = os.path.join(BUILD, "iptables", "veil-iptables")
HERE = os.path.dirname(os.path.abspath(__file__))
MOCK = os.path.join(HERE, "mock_api.py")
PYTHON = "/usr/bin/python3"

# Set by run.py when a test failed: labs then print their logs on close.
FAILED = False

VEIL_UID = 65534  # nobody: the daemon's own uid, excluded from redirection


def run(*cmd, check=True, **kw):
    return subprocess.run(list(cmd), check=check, capture_output=True, text=True, **kw)


class Netns:
    def __init__(self, lab, short):
        self.name = f"veil-{lab.tag}-{short}"
        run("ip", "netns", "add", self.name)
        lab._netns.append(self)
        self.sh("ip link set lo up")

    def sh(self, cmd, check=True):
        return run("ip", "netns", "exec", self.name, "sh", "-c", cmd, check=check)

    def exec(self, *cmd, check=True, **kw):
        return run("ip", "netns", "exec", self.name, *cmd, check=check, **kw)

    def popen(self, *cmd, **kw):
        return subprocess.Popen(["ip", "netns", "exec", self.name, *cmd], **kw)


def _exit_on_sigterm(_signum, _frame):
    # As SIGINT: unittest lets KeyboardInterrupt through (a SystemExit it
    # would record as one test's error and go on).
    raise KeyboardInterrupt("SIGTERM")


class Lab:
    """A set of namespaces, files and processes that all go away in close()."""

    def __init__(self):
        self.tag = f"{os.getpid() % 100000}{random.randrange(1000):03d}"
        self.dir = tempfile.mkdtemp(prefix="veil-lab-")
        os.chmod(self.dir, 0o755)
        self._netns = []
        self._procs = []
        self._closed = False
        atexit.register(self.close)
        # SIGTERM (meson's timeout, a CI run being stopped) would end the
        # process without atexit or finally: taken as an interrupt, so
        # everything this lab made is removed then too.
        if signal.getsignal(signal.SIGTERM) == signal.SIG_DFL:
            signal.signal(signal.SIGTERM, _exit_on_sigterm)

    def netns(self, short):
        return Netns(self, short)

    def veth(self, a, a_if, b, b_if):
        self._veths = getattr(self, "_veths", 0) + 1
        tmp_a, tmp_b = f"va{self.tag}{self._veths}"[:15], f"vb{self.tag}{self._veths}"[:15]
        run("ip", "link", "add", tmp_a, "type", "veth", "peer", "name", tmp_b)
        run("ip", "link", "set", tmp_a, "netns", a.name)
        run("ip", "link", "set", tmp_b, "netns", b.name)
        a.sh(f"ip link set {tmp_a} name {a_if} && ip link set {a_if} up")
        b.sh(f"ip link set {tmp_b} name {b_if} && ip link set {b_if} up")

    def path(self, name):
        return os.path.join(self.dir, name)

    def hosts(self, ns, entries):
        """Gives `ns` its own /etc/hosts ({name: address}): `ip netns exec`
        bind-mounts /etc/netns/<ns>/hosts over /etc/hosts. The directory is
        removed in close()."""
        d = os.path.join("/etc/netns", ns.name)
        if not hasattr(self, "_etc_dirs"):
            self._etc_dirs = []
            self._made_etc_netns = not os.path.isdir("/etc/netns")
        self._etc_dirs.append(d)
        os.makedirs(d, exist_ok=True)
        with open(os.path.join(d, "hosts"), "w") as f:
            f.write("127.0.0.1 localhost\n::1 localhost\n")
            for name, addr in entries.items():
                f.write(f"{addr} {name}\n")

    def spawn(self, ns, *cmd, log=None, uid=None):
        out = open(self.path(log), "wb") if log else subprocess.DEVNULL
        if uid is not None:
            cmd = ("setpriv", f"--reuid={uid}", f"--regid={uid}", "--clear-groups", *cmd)
        p = ns.popen(*cmd, stdout=out, stderr=subprocess.STDOUT if log else subprocess.DEVNULL)
        if log:
            out.close()  # the child has its own descriptor
        self._procs.append(p)
        return p

    def stop(self, p, sig=signal.SIGTERM, timeout=10):
        if p.poll() is None:
            p.send_signal(sig)
            try:
                p.wait(timeout)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        return p.returncode

    def print_logs(self, lines=60):
        """Prints the end of every log this lab's processes wrote (stderr)."""
        for name in sorted(os.listdir(self.dir)):
            if name.endswith(".log"):
                with open(self.path(name), errors="replace") as f:
                    tail = f.readlines()[-lines:]
                sys.stderr.write(f"--- {name} (last {len(tail)} lines) ---\n{''.join(tail)}")

    def close(self):
        if self._closed:
            return
        self._closed = True
        for p in self._procs:
            if p.poll() is None:
                p.kill()
                p.wait()
        if FAILED or sys.exc_info()[0] is not None:  # a test failed, or setUpClass
            self.print_logs()
        for ns in self._netns:
            run("ip", "netns", "del", ns.name, check=False)
        for d in getattr(self, "_etc_dirs", []):
            shutil.rmtree(d, ignore_errors=True)
        if getattr(self, "_made_etc_netns", False):
            try:
                os.rmdir("/etc/netns")  # only if empty: another lab may use it
            except OSError:
                pass
        shutil.rmtree(self.dir, ignore_errors=True)


# ---------------------------------------------------------------- certificates

def openssl(*args, cwd=None):
    return run("openssl", *args, cwd=cwd)


class Pki:
    """A test CA for the mock upstream, and leaves with chosen defects."""

    def __init__(self, directory, name="mock"):
        self.dir = os.path.join(directory, name)
        os.makedirs(self.dir)
        self.ca_key = os.path.join(self.dir, "ca.key")
        self.ca = os.path.join(self.dir, "ca.pem")
        openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                "-keyout", self.ca_key, "-out", self.ca, "-days", "30", "-subj", f"/CN={name} test root",
                "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign")
        with open(os.path.join(self.dir, "index.txt"), "w"):
            pass
        with open(os.path.join(self.dir, "serial"), "w") as f:
            f.write("1000\n")
        with open(os.path.join(self.dir, "ca.cnf"), "w") as f:
            f.write(f"""[ca]
default_ca = lab
[lab]
dir = {self.dir}
database = $dir/index.txt
serial = $dir/serial
new_certs_dir = $dir
certificate = {self.ca}
private_key = {self.ca_key}
default_md = sha256
policy = any
copy_extensions = copy
unique_subject = no
[any]
commonName = supplied
""")

    def leaf(self, name, san=None, start=None, end=None, days=10, issuer=None):
        """A leaf for `name` (SAN `san`, default the name). `start`/`end` as
        YYYYMMDDHHMMSSZ make expired or not-yet-valid certificates."""
        key = os.path.join(self.dir, f"{name}.key")
        csr = os.path.join(self.dir, f"{name}.csr")
        crt = os.path.join(self.dir, f"{name}.pem")
        san = san or f"DNS:{name}"
        openssl("req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", key,
                "-out", csr, "-subj", f"/CN={name}", "-addext", f"subjectAltName={san}",
                "-addext", "extendedKeyUsage=serverAuth")
        args = ["ca", "-batch", "-config", os.path.join(self.dir, "ca.cnf"), "-in", csr, "-out", crt, "-notext"]
        if start:
            args += ["-startdate", start]
        if end:
            args += ["-enddate", end]
        else:
            args += ["-days", str(days)]
        openssl(*args)
        return crt, key

    def self_signed(self, name):
        key = os.path.join(self.dir, f"{name}-self.key")
        crt = os.path.join(self.dir, f"{name}-self.pem")
        openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", key,
                "-out", crt, "-days", "5", "-subj", f"/CN={name}", "-addext", f"subjectAltName=DNS:{name}")
        return crt, key


# ---------------------------------------------------------------- processes

def wait_port(ns, addr, port, timeout=60.0, proc=None):
    """Waits until something listens on addr:port inside ns (veild compiles
    its rules first: seconds under the sanitizers). Gives up early if `proc`
    exits."""
    deadline = time.time() + timeout
    probe = ("import socket,sys\n"
             f"s=socket.socket(socket.AF_INET6 if ':' in {addr!r} else socket.AF_INET)\n"
             "s.settimeout(0.5)\n"
             f"sys.exit(0 if s.connect_ex(({addr!r},{port}))==0 else 1)\n")
    while time.time() < deadline:
        if ns.exec(PYTHON, "-c", probe, check=False).returncode == 0:
            return
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"the process meant to listen on {addr}:{port} exited with {proc.returncode}")
        time.sleep(0.1)
    raise RuntimeError(f"nothing listens on {addr}:{port} in {ns.name}")


def write_config(path, listeners, ca_dir, upstream_ca, extra=""):
    lines = ["listeners:"]
    for name, mode, addr in listeners:
        lines.append(f"  - {{name: {name}, mode: {mode}, address: \"{addr}\"}}")
    lines += [
        "ca:",
        f"  cert: {ca_dir}/ca.pem",
        f"  key: {ca_dir}/ca.key",
        "upstream:",
        f"  ca_file: {upstream_ca}",
        "targets:",
        "  - host: api.anthropic.com",
        "    mask:",
        "      - {method: POST, path: /v1/messages}",
        "masking:",
        "  packs: [aws]",
        "  on_unmaskable: block",
        "  max_body_bytes: 1MiB",
    ]
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n" + extra)


def make_lab_ca(lab, owner_uid=None):
    d = lab.path("labca")
    run(VEILCTL, "ca", "init", "--out", d, "--permit", "anthropic.com")
    os.chmod(d, 0o755)
    if owner_uid is not None:
        os.chown(os.path.join(d, "ca.key"), owner_uid, owner_uid)
    return d


def records(path):
    """Requests the mock recorded (one JSON object per line)."""
    if not os.path.exists(path):
        return []
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]
