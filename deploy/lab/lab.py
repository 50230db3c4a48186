#!/usr/bin/env python3
"""The veil network lab: one machine, three kinds of namespace, real traffic.

    gateway style (default):
      [app] --veth-- [gw: veild, TPROXY rules] --veth-- [net: mock Anthropic API, DNS]
      198.18.1.2     198.18.1.1 | 198.18.2.1             198.18.2.2; API 198.18.100.10, DNS 198.18.100.53
      fd00:1::2      fd00:1::1  | fd00:2::1              fd00:2::2;  API fd00:100::10

    sidecar style (--style sidecar):
      [app: the application + veild (uid 65534), nat OUTPUT REDIRECT] --veth-- [net: API, DNS]
      198.18.1.2  fd00:1::2                                                    198.18.1.1  fd00:1::1

"The internet" (net) runs a mock of the Anthropic Messages API with its own
CA (the appliance trusts it as its upstream trust store, as it would trust
the public roots) and a DNS server (dnsmasq) that answers api.anthropic.com.
The application namespace uses that DNS server and trusts only the lab CA
that `veilctl ca init` creates; it is not told about veil in any other way.

The lab installs the rules with `veil-iptables`, starts `veild`, sends real
requests from the application namespace (curl, and the official Anthropic
TypeScript SDK: a plain call, a stream and a tool call), and prints side by
side what the application sent, what the API received and what the
application got back. It exits non-zero if any identifier reached the API,
if the application did not get its originals back, or if teardown left
anything behind. Everything it creates (namespaces, /etc/netns entries,
rules, temporary files, processes) is removed on exit, also on failure.

usage: deploy/lab/lab.py [--style gateway|sidecar] [--destinations all|dns]
                         [--backend iptables|nft] [--build DIR] [--keep-logs DIR]
Needs root. Run it through scripts/lab, which installs and builds first.
"""

import argparse
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import textwrap
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.abspath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, os.path.join(REPO, "tests", "integration"))
import lab as L  # noqa: E402  (namespaces, PKI, processes: shared with the integration tests)

API4, API6, API4_NEW = "198.18.100.10", "fd00:100::10", "198.18.100.11"
DNS4 = "198.18.100.53"
HOST = "api.anthropic.com"
VEIL_UID = L.VEIL_UID
APP_DIR = os.path.join(HERE, "app")
TOKEN = re.compile(r"\b[A-Z][A-Z0-9_]*_[0-9]{3,}\b")

COLOR = sys.stdout.isatty()


def paint(code, s):
    return f"\033[{code}m{s}\033[0m" if COLOR else s


def step(msg):
    print(paint("1", "==> ") + msg, flush=True)


def ok(msg):
    print("    " + paint("32", "ok") + "  " + msg, flush=True)


def bad(msg):
    print("    " + paint("31", "FAIL") + "  " + msg, flush=True)


def info(msg):
    print("    " + msg, flush=True)


class Failure(Exception):
    pass


def binary(build, *parts):
    p = os.path.join(build, *parts)
    if not os.access(p, os.X_OK):
        raise Failure(f"{p} is missing: build first (scripts/lab does)")
    return p


def cut(s, n):
    s = str(s)
    return s if len(s) <= n else s[: n - 1] + "…"


class Demo:
    def __init__(self, args):
        self.args = args
        self.build = os.path.abspath(args.build)
        self.veild_bin = binary(self.build, "daemon", "veild", "veild")
        self.veilctl = binary(self.build, "daemon", "veilctl", "veilctl")
        self.iptables = binary(self.build, "iptables", "veil-iptables")
        if not os.path.isdir(os.path.join(APP_DIR, "node_modules", "@anthropic-ai", "sdk")):
            raise Failure("deploy/lab/app/node_modules is missing: run `npm ci` there (scripts/lab does)")
        self.lab = L.Lab()
        self.problems = []
        self.results = []
        self.veild = None
        self.installed = False

    # ------------------------------------------------------------ topology

    def topology(self):
        a = self.args
        step(f"namespaces ({a.style} style): the application, "
             + ("the appliance, " if a.style == "gateway" else "")
             + "and the internet (mock Anthropic API + DNS)")
        lab = self.lab
        self.app = lab.netns("app")
        self.net = lab.netns("net")
        if a.style == "gateway":
            self.gw = lab.netns("gw")
            lab.veth(self.app, "eth0", self.gw, "eth0")
            lab.veth(self.gw, "eth1", self.net, "eth0")
            self.app.sh("ip addr add 198.18.1.2/24 dev eth0 && ip route add default via 198.18.1.1 && "
                        "ip -6 addr add fd00:1::2/64 dev eth0 nodad && ip -6 route add default via fd00:1::1")
            self.gw.sh("ip addr add 198.18.1.1/24 dev eth0 && ip addr add 198.18.2.1/24 dev eth1 && "
                       "ip -6 addr add fd00:1::1/64 dev eth0 nodad && ip -6 addr add fd00:2::1/64 dev eth1 nodad && "
                       "ip route add 198.18.100.0/24 via 198.18.2.2 && ip -6 route add fd00:100::/64 via fd00:2::2 && "
                       "sysctl -qw net.ipv4.ip_forward=1 net.ipv6.conf.all.forwarding=1 "
                       "net.ipv4.conf.all.rp_filter=0 net.ipv4.conf.default.rp_filter=0 "
                       "net.ipv4.conf.eth0.rp_filter=0")
            self.net.sh("ip addr add 198.18.2.2/24 dev eth0 && ip route add default via 198.18.2.1 && "
                        "ip -6 addr add fd00:2::2/64 dev eth0 nodad && ip -6 route add default via fd00:2::1")
            self.veil_ns = self.gw
        else:
            lab.veth(self.app, "eth0", self.net, "eth0")
            self.app.sh("ip addr add 198.18.1.2/24 dev eth0 && ip route add default via 198.18.1.1 && "
                        "ip -6 addr add fd00:1::2/64 dev eth0 nodad && ip -6 route add default via fd00:1::1")
            self.net.sh("ip addr add 198.18.1.1/24 dev eth0 && ip -6 addr add fd00:1::1/64 dev eth0 nodad")
            self.veil_ns = self.app
        self.net.sh(f"ip addr add {API4}/32 dev lo && ip addr add {API4_NEW}/32 dev lo && "
                    f"ip addr add {DNS4}/32 dev lo && ip -6 addr add {API6}/128 dev lo nodad")
        # The application resolves through the lab's DNS server only.
        lab.hosts(self.app, {})
        with open(os.path.join("/etc/netns", self.app.name, "resolv.conf"), "w") as f:
            f.write(f"nameserver {DNS4}\noptions timeout:2 attempts:2\n")
        ok(f"{self.app.name}, " + (f"{self.gw.name}, " if a.style == "gateway" else "") + self.net.name)

    def internet(self):
        step("the internet: a mock Anthropic API with its own CA, and a DNS server for api.anthropic.com")
        lab = self.lab
        self.pki = L.Pki(lab.dir, "public-root")
        cert = self.pki.leaf(HOST)
        self.record = lab.path("api-received.jsonl")
        self.mock = lab.spawn(self.net, L.PYTHON, L.MOCK, "--listen", f"{API4}:443", "--listen", f"{API4_NEW}:443",
                              "--listen", f"[{API6}]:443", "--cert", ":".join(cert), "--record", self.record,
                              log="mock-api.log")
        L.wait_port(self.net, API4, 443, proc=self.mock)
        self.hosts_file = lab.path("dns-hosts")
        self.set_dns(API4)
        self.dns = lab.spawn(self.net, "dnsmasq", "--keep-in-foreground", "--no-daemon", "--no-resolv", "--no-hosts",
                             f"--addn-hosts={self.hosts_file}", f"--listen-address={DNS4}", "--bind-interfaces",
                             "--local-ttl=30", "--log-queries", "--user=root", "--pid-file=",
                             log="dnsmasq.log")
        deadline = time.time() + 10
        while time.time() < deadline:
            r = self.app.exec("getent", "ahostsv4", HOST, check=False)
            if API4 in r.stdout:
                break
            time.sleep(0.2)
        else:
            raise Failure("the lab DNS server does not answer api.anthropic.com")
        ok(f"mock API on {API4}:443 and [{API6}]:443 (record of what it receives: {os.path.basename(self.record)})")
        ok(f"DNS on {DNS4}: {HOST} -> {API4}, {API6}")

    def set_dns(self, v4):
        with open(self.hosts_file, "w") as f:
            f.write(f"{v4} {HOST}\n{API6} {HOST}\n")
        if getattr(self, "dns", None) is not None:
            self.dns.send_signal(signal.SIGHUP)  # dnsmasq re-reads --addn-hosts

    # ------------------------------------------------------------ appliance

    def appliance(self):
        a = self.args
        lab = self.lab
        step("lab CA: veilctl ca init --permit anthropic.com (key 0600, name-constrained)")
        self.ca_dir = lab.path("labca")
        L.run(self.veilctl, "ca", "init", "--out", self.ca_dir, "--permit", "anthropic.com")
        mode = oct(os.stat(os.path.join(self.ca_dir, "ca.key")).st_mode & 0o777)
        os.chmod(self.ca_dir, 0o755)
        if a.style == "sidecar":
            os.chown(os.path.join(self.ca_dir, "ca.key"), VEIL_UID, VEIL_UID)
        ok(f"{self.ca_dir}/ca.pem (the application trusts it); ca.key mode {mode}")

        self.config = lab.path("veil.yaml")
        if a.style == "gateway":
            listener = 'listeners:\n  - {name: gateway, mode: tproxy, address: "[::]:15002"}\n'
            capture = ("capture:\n  style: gateway\n  interfaces: [eth0]\n"
                       f"  destinations: {a.destinations}\n  backend: {a.backend}\n")
        else:
            listener = 'listeners:\n  - {name: sidecar, mode: redirect, address: "[::]:15001"}\n'
            capture = (f"capture:\n  style: sidecar\n  exclude_uids: [{VEIL_UID}]\n"
                       f"  destinations: {a.destinations}\n  backend: {a.backend}\n")
        with open(self.config, "w") as f:
            f.write(listener + textwrap.dedent(f"""\
                ca:
                  cert: {self.ca_dir}/ca.pem
                  key: {self.ca_dir}/ca.key
                upstream:
                  ca_file: {self.pki.ca}
                targets:
                  - host: api.anthropic.com
                    mask:
                      - {{method: POST, path: /v1/messages}}
                masking:
                  packs: [aws]
                  on_unmaskable: block
                """) + capture)
        r = L.run(self.veild_bin, "--check-config", self.config, check=False)
        if r.returncode != 0:
            raise Failure("veild --check-config: " + (r.stderr or r.stdout).strip())

        step(f"veil-iptables install --netns {self.veil_ns.name} ({a.backend} backend)")
        self.before = self.ruleset()
        r = self.veil_iptables("install")
        if r.returncode != 0:
            raise Failure("veil-iptables install failed:\n" + r.stdout + r.stderr)
        self.installed = True
        r = self.veil_iptables("verify")
        if r.returncode != 0:
            raise Failure("veil-iptables verify failed after install:\n" + r.stdout + r.stderr)
        ok("installed and verified: " + self.rule_summary())

        step("veild" + (" (uid 65534, excluded from redirection)" if a.style == "sidecar" else ""))
        cmd = [self.veild_bin, "--config", self.config, "--workers", "2"]
        if a.style == "sidecar":
            # Its own uid is what keeps its upstream connections from being
            # redirected back to itself; NFQUEUE (destinations: dns) needs
            # CAP_NET_ADMIN, kept as an ambient capability.
            cmd = ["setpriv", f"--reuid={VEIL_UID}", f"--regid={VEIL_UID}", "--clear-groups",
                   "--inh-caps=+net_admin", "--ambient-caps=+net_admin", *cmd]
        self.veild = lab.spawn(self.veil_ns, *cmd, log="veild.log")
        port = 15002 if a.style == "gateway" else 15001
        L.wait_port(self.veil_ns, "127.0.0.1" if a.style == "sidecar" else "198.18.1.1", port, proc=self.veild)
        ok(f"listening on :{port}, pid {self.veild.pid}")

    def veil_iptables(self, command):
        return L.run(self.iptables, command, "--config", self.config, "--backend", self.args.backend,
                     "--netns", self.veil_ns.name, check=False)

    def ruleset(self):
        """Everything rules-related in the appliance's namespace, for the
        before/after comparison of teardown. Built-in tables that hold
        nothing (iptables creates them on first use and cannot remove them;
        they match nothing) are left out."""
        ns = self.veil_ns
        parts = []
        for cmd in ("iptables-save", "ip6tables-save", "nft list ruleset", "ip rule", "ip -6 rule",
                    "ip route show table all", "ip -6 route show table all", "ipset list -n"):
            r = ns.sh(cmd + " 2>/dev/null", check=False)
            # iptables-save stamps times and counters, and the kernel adds
            # link-local routes when it likes ("proto kernel"): not rules.
            text = "\n".join(line for line in r.stdout.splitlines()
                             if not line.startswith("#") and "proto kernel" not in line)
            text = re.sub(r"\[\d+:\d+\]", "[0:0]", text)
            if cmd.endswith("-save"):
                text = re.sub(r"^\*\w+\n(?::[A-Z]+ ACCEPT \[0:0\]\n)*COMMIT\n?", "", text + "\n", flags=re.M)
            elif cmd.startswith("nft"):
                empty_chain = r"\tchain \w+ \{\n\t\ttype [^\n]*policy accept;\n\t\}\n"
                text = re.sub(r"^table \w+ \w+ \{\n(?:" + empty_chain + r")*\}\n?", "", text + "\n", flags=re.M)
            parts.append(f"## {cmd}\n" + text.strip())
        return "\n".join(parts)

    def rule_summary(self):
        ns = self.veil_ns
        if self.args.backend == "nft":
            out = ns.sh("nft list table inet veil", check=False).stdout
            return f"table inet veil, {out.count('comment')} rules"
        n4 = ns.sh("iptables-save | grep -c veil", check=False).stdout.strip()
        n6 = ns.sh("ip6tables-save | grep -c veil", check=False).stdout.strip()
        return f"{n4} IPv4 and {n6} IPv6 lines carry the veil comment"

    # ------------------------------------------------------------ traffic

    def app_env(self):
        return {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": "/root",
                "NODE_EXTRA_CA_CERTS": f"{self.ca_dir}/ca.pem",
                "ANTHROPIC_API_KEY": "sk-ant-lab-0000-not-a-real-key"}

    def node(self, scenario):
        before = len(L.records(self.record))
        r = self.app.exec("env", "-C", APP_DIR, *[f"{k}={v}" for k, v in self.app_env().items()],
                          "node", "app.mjs", scenario, check=False, timeout=60)
        try:
            out = json.loads(r.stdout.strip().splitlines()[-1])
        except (ValueError, IndexError):
            out = {"ok": False, "error": (r.stderr or r.stdout).strip()[-400:]}
        return out, L.records(self.record)[before:]

    def curl(self, body, stream=False, host=None, ipv4=False):
        before = len(L.records(self.record))
        args = ["curl", "-sS", "--max-time", "20", "--cacert", f"{self.ca_dir}/ca.pem",
                "-H", "content-type: application/json", "-H", "x-api-key: sk-ant-lab-0000-not-a-real-key",
                "-H", "anthropic-version: 2023-06-01", "--data-binary", body, f"https://{HOST}/v1/messages"]
        if stream:
            args.insert(1, "-N")
        if ipv4:
            args.insert(1, "-4")
        if host:
            args[1:1] = ["--resolve", f"{HOST}:443:[{host}]" if ":" in host else f"{HOST}:443:{host}"]
        r = self.app.exec(*args, check=False, timeout=30)
        return r, L.records(self.record)[before:]

    def traffic(self):
        incident = json.load(open(os.path.join(APP_DIR, "incident.json")))
        self.planted = incident["planted"]
        body = json.dumps({"model": "claude-sonnet-4-5", "max_tokens": 256,
                           "messages": [{"role": "user", "content": incident["question"]}]})

        step("curl from the application namespace (it trusts the lab CA; verification stays on)")
        r, recs = self.curl(body)
        self.scenario("curl, plain", body, recs, r.stdout if r.returncode == 0 else None,
                      r.stderr if r.returncode else None)
        sbody = json.dumps({**json.loads(body), "stream": True})
        r, recs = self.curl(sbody, stream=True)
        text = None
        if r.returncode == 0:
            text = "".join(json.loads(line[6:])["delta"].get("text", "") for line in r.stdout.splitlines()
                           if line.startswith("data: ") and "text_delta" in line)
        self.scenario("curl, stream", sbody, recs, text, r.stderr if r.returncode else None,
                      events=r.stdout.count("\nevent: ") + r.stdout.startswith("event: "))
        r, recs = self.curl(body, host=API6)
        self.scenario("curl, IPv6", body, recs, r.stdout if r.returncode == 0 else None,
                      r.stderr if r.returncode else None)

        step("the official Anthropic TypeScript SDK (@anthropic-ai/sdk, NODE_EXTRA_CA_CERTS=lab CA)")
        for scenario, title in (("plain", "SDK, messages.create"), ("stream", "SDK, messages.stream"),
                                ("tool", "SDK, tool call round trip")):
            out, recs = self.node(scenario)
            if not out.get("ok"):
                self.scenario(title, None, recs, None, out.get("error"))
                continue
            sent = json.dumps(out["request"])
            got = out.get("text", "")
            extra = {}
            if scenario == "stream":
                extra["events"] = out.get("events")
            if scenario == "tool":
                extra["tool_input"] = out.get("tool_input")
                sent = json.dumps(out["first_request"]) + "\n" + sent
                got = json.dumps(out.get("tool_input")) + "\n" + got
            self.scenario(title, sent, recs, got, None, **extra)

        if self.args.destinations == "dns":
            step(f"DNS-following: the API moves to {API4_NEW}; veild learns it from the DNS answer")
            self.set_dns(API4_NEW)
            time.sleep(0.5)
            r = self.app.exec("getent", "ahostsv4", HOST, check=False)
            if API4_NEW not in r.stdout:
                self.problem(f"the lab DNS server still answers {r.stdout.split()[:1]} after the change")
            r, recs = self.curl(body, ipv4=True)
            members = self.set_members()
            if API4_NEW in members:
                ok(f"veild added {API4_NEW} to the capture set from the DNS answer: {members}")
            else:
                self.problem(f"{API4_NEW} is not in the capture set: {members}")
            if recs and any(x.get("local") != API4_NEW for x in recs):
                self.problem(f"after the move the API was reached on {recs[-1].get('local')}, not {API4_NEW}")
            self.scenario(f"curl after the move ({API4_NEW})", body, recs,
                          r.stdout if r.returncode == 0 else None, r.stderr if r.returncode else None)

    def set_members(self):
        name = "veil_targets4"
        if self.args.backend == "nft":
            out = self.veil_ns.sh(f"nft list set inet veil {name}", check=False).stdout
            m = re.search(r"elements = \{([^}]*)\}", out, re.S)
            return " ".join(m.group(1).split()) if m else "(empty)"
        out = self.veil_ns.sh(f"ipset list {name}", check=False).stdout
        return ", ".join(l.strip() for l in out.split("Members:")[-1].splitlines() if l.strip()) or "(empty)"

    def scenario(self, title, sent, recs, got, error, events=None, tool_input=None):
        self.results.append({"title": title, "sent": sent, "recs": recs, "got": got, "error": error,
                             "events": events, "tool_input": tool_input})
        if error:
            bad(f"{title}: {cut(error.strip(), 300)}")
            self.problem(f"{title} failed")
            return
        received = "\n".join(json.dumps(x) for x in recs)
        leaked = [p for p in self.planted if p in received]
        if not recs:
            bad(f"{title}: the API received nothing")
            self.problem(f"{title}: nothing reached the API")
        elif leaked:
            bad(f"{title}: the API received {', '.join(leaked)}")
            self.problem(f"{title}: identifiers reached the API")
        missing = [p for p in self.planted if sent and p in sent and got is not None and p not in got]
        restored = [p for p in self.planted if sent and p in sent and got and p in got]
        if got is None:
            self.problem(f"{title}: no answer")
        elif not restored:
            bad(f"{title}: the application got no original back")
            self.problem(f"{title}: nothing restored")
        n = len(TOKEN.findall(received))
        line = f"{title}: the API saw {n} tokens and none of the {len(self.planted)} identifiers"
        if events:
            line += f"; {events} SSE events"
        if tool_input:
            line += f"; tool input instance_id={tool_input.get('instance_id')}"
        if not leaked and recs and restored:
            ok(line + f"; the application got {len(restored)} originals back")
        if missing and not leaked:
            info(f"      (not echoed by the mock: {', '.join(missing)})")

    def problem(self, msg):
        self.problems.append(msg)

    # ------------------------------------------------------------ the side-by-side

    def side_by_side(self):
        step("side by side: what the application sent, what the API received, what it got back")
        first = next((r for r in self.results if r["sent"] and r["recs"] and r["got"]), None)
        if not first:
            info("(no complete exchange to show)")
            return
        mapping = self.mapping(first["sent"].splitlines()[0])
        received = "\n".join(json.dumps(x) for x in first["recs"])
        w = (24, 38, 14, 8, 8)
        print(f"    exchange: {first['title']}")
        print("    " + "  ".join(h.ljust(n) for h, n in zip(
            ("type", "the application sent", "API received", "at API", "restored"), w)))
        print("    " + "  ".join("-" * n for n in w))
        for token, original in sorted(mapping.items(), key=lambda kv: first["sent"].find(kv[1])):
            kind = token.rsplit("_", 1)[0]
            at_api = "no" if original not in received else paint("31", "LEAKED")
            back = "yes" if original in (first["got"] or "") else "-"
            print("    " + "  ".join((cut(kind, w[0]).ljust(w[0]), cut(original, w[1]).ljust(w[1]),
                                      token.ljust(w[2]), at_api.ljust(w[3]), back.ljust(w[4]))))
        print()
        print("    excerpt the application sent: " + cut(json.loads(first["sent"].splitlines()[0])["messages"][0]
                                                          ["content"], 110))
        api_body = json.loads(first["recs"][-1]["body"])
        print("    excerpt the API received:     " + cut(api_body["messages"][0]["content"], 110))
        got = first["got"]
        try:  # curl's answer is the response JSON: show its text
            got = "".join(b.get("text", "") for b in json.loads(got)["content"])
        except (ValueError, KeyError, TypeError):
            pass
        print("    excerpt the application got:  " + cut(got, 110))
        print()
        w2 = (30, 10, 12, 10, 10)
        print("    " + "  ".join(h.ljust(n) for h, n in zip(
            ("exchange", "requests", "identifiers", "leaked", "restored"), w2)))
        print("    " + "  ".join("-" * n for n in w2))
        for r in self.results:
            received = "\n".join(json.dumps(x) for x in r["recs"])
            sent = r["sent"] or ""
            ids = [p for p in self.planted if p in sent]
            leaked = [p for p in self.planted if p in received]
            restored = [p for p in ids if r["got"] and p in r["got"]]
            status = "error" if r["error"] else str(len(leaked))
            print("    " + "  ".join((cut(r["title"], w2[0]).ljust(w2[0]), str(len(r["recs"])).ljust(w2[1]),
                                      str(len(ids)).ljust(w2[2]), status.ljust(w2[3]),
                                      str(len(restored)).ljust(w2[4]))))

    def mapping(self, body):
        """veil's masking is a pure function of the body: `veilctl mask` on
        what the application sent gives the tokens the API saw."""
        mpath = self.lab.path("mapping.json")
        r = subprocess.run([self.veilctl, "mask", "--mapping-out", mpath], input=body, capture_output=True,
                           text=True)
        if r.returncode != 0:
            return {}
        with open(mpath) as f:
            return json.load(f)

    # ------------------------------------------------------------ teardown

    def teardown(self):
        step("teardown: SIGTERM veild (drains), veil-iptables teardown, namespaces removed")
        if self.veild is not None:
            rc = self.lab.stop(self.veild)
            if rc == 0:
                ok("veild exited 0 after SIGTERM")
            else:
                bad(f"veild exited {rc}")
                self.problem("veild did not exit cleanly")
            self.veild = None
        if self.installed:
            r = self.veil_iptables("teardown")
            self.installed = False
            if r.returncode != 0:
                bad("veil-iptables teardown: " + (r.stderr or r.stdout).strip())
                self.problem("teardown failed")
            elif (after := self.ruleset()) != self.before:
                import difflib
                bad("rules after teardown differ from before install:\n" + "\n".join(
                    difflib.unified_diff(self.before.splitlines(), after.splitlines(), "before", "after", lineterm="")))
                self.problem("teardown left rules behind")
            else:
                ok("rules, routes and sets after teardown are exactly those before install")

    def close(self):
        names = [ns.name for ns in self.lab._netns]
        self.lab.close()
        left = set(subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout.split())
        still = [n for n in names if n in left] + [d for d in (os.path.join("/etc/netns", n) for n in names)
                                                   if os.path.exists(d)]
        if still:
            bad("left behind: " + ", ".join(still))
            self.problem("the machine is not as it was")
        else:
            ok(f"namespaces {', '.join(names)} and their files are gone")


def main():
    ap = argparse.ArgumentParser(description="veil network-lab demonstration")
    ap.add_argument("--style", choices=("gateway", "sidecar"), default="gateway")
    ap.add_argument("--destinations", choices=("all", "dns"), default="all",
                    help="capture all of :443, or only addresses DNS answers gave for api.anthropic.com")
    ap.add_argument("--backend", choices=("iptables", "nft"), default="iptables")
    ap.add_argument("--build", default=os.environ.get("VEIL_BUILD", os.path.join(REPO, "build")))
    ap.add_argument("--keep-logs", metavar="DIR", help="copy every log, config and record to DIR")
    args = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("the lab needs root (network namespaces)")
    start = time.time()
    demo = None
    try:
        demo = Demo(args)
        demo.topology()
        demo.internet()
        demo.appliance()
        demo.traffic()
        demo.side_by_side()
    except Failure as e:
        bad(str(e))
        if demo:
            demo.problem(str(e))
        else:
            return 1
    except subprocess.CalledProcessError as e:
        bad(f"{' '.join(map(str, e.cmd))}: {(e.stderr or '').strip()}")
        demo.problem("a lab command failed")
    finally:
        if demo:
            try:
                demo.teardown()
            finally:
                if demo.problems:
                    L.FAILED = True  # the lab prints the logs of its processes
                if args.keep_logs:
                    shutil.copytree(demo.lab.dir, args.keep_logs, dirs_exist_ok=True)
                demo.close()
    print()
    if demo.problems:
        print(paint("31", "RESULT: problems") + f" ({time.time() - start:.0f} s)")
        for p in dict.fromkeys(demo.problems):
            print(f"  - {p}")
        return 1
    print(paint("32", "RESULT: ok") + f" — no identifier reached the API, the application got its originals "
          f"back, the machine is as it was ({time.time() - start:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
