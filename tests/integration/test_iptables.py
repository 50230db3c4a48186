"""veil-iptables in network namespaces it creates: install is idempotent
and repairs half-installed rules, verify is exact, teardown restores the
ruleset (other rules present), a killed install is completed by the next,
--netns and --family act only where they say. Both styles, both families,
backends iptables-legacy, iptables-nft and nft.

Every check compares whole listings (iptables-save and ip6tables-save of
both flavours, nft list ruleset, ip rule and ip route of both families,
ipset save) with counters, timestamps and ipset's random initval removed.
"""

import difflib
import functools
import os
import random
import re
import subprocess
import time
import unittest

import lab

BACKENDS = ["iptables-legacy", "iptables-nft", "nft"]
HEAD = ("listeners:\n"
        "  - {name: side, mode: redirect, address: \"[::]:15001\"}\n"
        "  - {name: gw, mode: tproxy, address: \"[::]:15002\"}\n"
        "targets:\n  - host: api.anthropic.com\n")
CONFIGS = {
    "sidecar": "capture:\n  style: sidecar\n  exclude_uids: [65534]\n"
               "  skip_cidrs: [198.18.9.0/24, 'fd00:9::/32']\n",
    "gateway": "capture:\n  style: gateway\n  interfaces: [eth0, 'veth+']\n  exclude_mark: 0x100\n",
    "sidecar-dns": "capture:\n  style: sidecar\n  exclude_uids: [65534]\n  destinations: dns\n",
    "gateway-dns": "capture:\n  style: gateway\n  destinations: dns\n  tproxy_mark: 0x2\n  route_table: 200\n",
}
LISTINGS = [
    ("iptables-legacy-save", ["iptables-legacy-save"]),
    ("ip6tables-legacy-save", ["ip6tables-legacy-save"]),
    ("iptables-nft-save", ["iptables-nft-save"]),
    ("ip6tables-nft-save", ["ip6tables-nft-save"]),
    ("nft list ruleset", ["nft", "list", "ruleset"]),
    ("ip -4 rule", ["ip", "-4", "rule", "show"]),
    ("ip -6 rule", ["ip", "-6", "rule", "show"]),
    ("ip -4 route", ["ip", "-4", "route", "show", "table", "all"]),
    ("ip -6 route", ["ip", "-6", "route", "show", "table", "all"]),
    ("ipset save", ["ipset", "save"]),
]


def listing(argv, ns=None):
    r = (ns.exec(*argv, check=False) if ns else lab.run(*argv, check=False))
    text = "\n".join(l for l in r.stdout.splitlines() if not l.startswith("#"))
    text = re.sub(r"\[\d+:\d+\]", "[0:0]", text)
    text = re.sub(r"counter packets \d+ bytes \d+", "counter", text)
    return re.sub(r" initval 0x[0-9a-f]+", "", text)


def snapshot(ns=None):
    return {name: listing(argv, ns) for name, argv in LISTINGS}


SHORT = {"iptables-legacy": "l", "iptables-nft": "x", "nft": "n"}


def flavour(backend):
    return "legacy" if backend == "iptables-legacy" else "nft"


@functools.lru_cache(maxsize=None)
def nft_queue_supported():
    """Some kernels are built without nft's queue expression (CONFIG_NFT_QUEUE);
    xt's NFQUEUE, which the iptables backends use, is separate."""
    probe = lab.Lab()
    try:
        ns = probe.netns("probe")
        r = ns.sh("nft add table inet p && nft add chain inet p c '{ type filter hook prerouting priority 0; }' && "
                  "nft add rule inet p c udp sport 53 queue flags bypass to 9", check=False)
        return r.returncode == 0
    finally:
        probe.close()


def add_unrelated(ns, backend):
    """Rules, chains, policy routing and sets that are not veil's, in every
    table veil touches, for the flavour under test (and, for nft, a table of
    its own plus iptables-nft rules)."""
    fl = flavour(backend)
    for ipt in (f"iptables-{fl}", f"ip6tables-{fl}"):
        ns.sh(f"{ipt} -t nat -A OUTPUT -p tcp --dport 8080 -j REDIRECT --to-ports 9090 && "
              f"{ipt} -t nat -A PREROUTING -p tcp --dport 8081 -j REDIRECT --to-ports 9091 && "
              f"{ipt} -t mangle -A PREROUTING -p udp --dport 5000 -j MARK --set-mark 7 && "
              f"{ipt} -t filter -N USER_CHAIN && {ipt} -t filter -A USER_CHAIN -j RETURN && "
              f"{ipt} -t filter -A OUTPUT -p tcp --dport 22 -j USER_CHAIN && "
              f"{ipt} -t filter -A FORWARD -p tcp --dport 25 -j DROP")
    if backend == "nft":
        ns.sh("nft add table inet other && "
              "nft add chain inet other out '{ type filter hook output priority 10; policy accept; }' && "
              "nft add rule inet other out tcp dport 22 accept")
    ns.sh("ip rule add fwmark 0x9 lookup 99 pref 1000 && ip route add local 198.18.99.0/24 dev lo table 99 && "
          "ip -6 rule add fwmark 0x9 lookup 99 pref 1000 && ipset create other4 hash:ip")


def sections(render_text):
    """`render` output as {header: [lines]}."""
    out, cur = {}, None
    for line in render_text.splitlines():
        if line.startswith("# ") and not line.startswith("# veil-iptables"):
            cur = line[2:]
            out[cur] = []
        elif cur is not None:
            out[cur].append(line)
    return out


def tables(lines):
    """iptables-restore/-save lines as {table: [lines]}."""
    out, cur = {}, None
    for line in lines:
        if line.startswith("*"):
            cur = line[1:]
            out[cur] = []
        elif cur and line != "COMMIT":
            out[cur].append(line)
    return out


class IptablesCase(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.lab = lab.Lab()
        cls.configs = {}
        for name, capture in CONFIGS.items():
            path = cls.lab.path(name + ".yaml")
            with open(path, "w") as f:
                f.write(HEAD + capture)
            cls.configs[name] = path

    @classmethod
    def tearDownClass(cls):
        cls.lab.close()

    def veil(self, command, name, backend, ns=None, family=None, env=None, config=None):
        argv = [lab.VEIL_IPTABLES, command, "--config", config or self.configs[name], "--backend", backend]
        if ns is not None:
            argv += ["--netns", ns.name]
        if family:
            argv += ["--family", family]
        e = dict(os.environ, **(env or {}))
        return subprocess.run(argv, capture_output=True, text=True, env=e)

    def ok(self, command, name, backend, ns, **kw):
        r = self.veil(command, name, backend, ns, **kw)
        self.assertEqual(r.returncode, 0, f"{command} failed:\n{r.stdout}{r.stderr}")
        return r

    def assertSame(self, a, b, what):
        problems = []
        for key in a:
            if a[key] != b[key]:
                diff = "".join(difflib.unified_diff(a[key].splitlines(True), b[key].splitlines(True), "expected",
                                                    "actual"))
                problems.append(f"{key}:\n{diff}")
        if problems:
            self.fail(f"{what}: listings differ\n" + "\n".join(problems))

    def skip_unsupported(self, name, backend):
        if backend == "nft" and "dns" in name and not nft_queue_supported():
            self.skipTest("this kernel has no nft queue expression (CONFIG_NFT_QUEUE); the iptables backends "
                          "cover destinations: dns")

    def rendered_equals_installed(self, ns, name, backend):
        """What render prints is what the tools list after a clean install,
        byte for byte (no normalization)."""
        text = self.ok("render", name, backend, None).stdout
        secs = sections(text)
        if backend == "nft":
            head = next(h for h in secs if h.endswith("nft -f"))
            got = ns.exec("nft", "-s", "list", "table", "inet", "veil").stdout
            self.assertEqual(got, "\n".join(secs[head]) + "\n")
            return
        for fam, tool in (("4", "iptables"), ("6", "ip6tables")):
            head = f"ip{fam} {tool}-{flavour(backend)}-restore --noflush"
            want = tables(secs[head])
            got = tables(ns.exec(f"{tool}-{flavour(backend)}-save").stdout.splitlines())
            for t, lines in want.items():
                rules = [l for l in lines if l.startswith("-A ")]
                self.assertEqual([l for l in got[t] if l.startswith("-A VEIL_")], rules, f"ip{fam} {t}")
                for l in lines:
                    if l.startswith("-I "):
                        parts = l.split(" ", 3)
                        self.assertIn(f"-A {parts[1]} {parts[3]}", got[t])

    def tampers(self, name, backend):
        """(command run in the namespace, what verify must report)."""
        gateway = name.startswith("gateway")
        out = []
        if backend == "nft":
            first = "VEIL_PREROUTING4" if gateway else "VEIL_OUTPUT4"
            hook = "mangle_prerouting4" if gateway else "nat_output4"
            out += [
                (f"nft delete rule inet veil {first} handle $(nft -a list chain inet veil {first} | "
                 "sed -n 's/.*comment.*# handle \\([0-9]*\\)$/\\1/p' | head -1)", "missing rule"),
                ("nft add rule inet veil VEIL_FILTER6 tcp dport 80 drop", "extra rule: tcp dport 80 drop"),
                (f"nft flush chain inet veil {hook}", f"chain {hook}: missing rule: meta nfproto ipv4 "),
                ("nft add chain inet veil VEIL_STRAY4", "extra chain VEIL_STRAY4"),
                ("nft delete table inet veil", "missing table"),
            ]
        else:
            fl = flavour(backend)
            table, chain = ("mangle", "VEIL_PREROUTING") if gateway else ("nat", "VEIL_OUTPUT")
            jump = next(l for l in sections(self.ok("render", name, backend, None).stdout)
                        [f"ip4 iptables-{fl}-restore --noflush"] if l.startswith("-I ") and chain in l)
            spec = jump.split(" ", 3)[3]
            builtin = jump.split(" ")[1]
            out += [
                (f"iptables-{fl} -t {table} -D {chain} 1", "missing rule"),
                (f"ip6tables-{fl} -t filter -A VEIL_FILTER -p tcp --dport 80 -j ACCEPT", "extra rule"),
                (f"iptables-{fl} -t {table} -I {builtin} 1 {spec}", "duplicate jump (2 times)"),
                (f"iptables-{fl} -t {table} -D {builtin} {spec}", "missing jump"),
                (f"ip6tables-{fl} -t mangle -N VEIL_STRAY", "extra chain VEIL_STRAY"),
                (f"iptables-{fl} -t filter -A OUTPUT -m comment --comment 'veil: stray' -j ACCEPT", "extra rule"),
            ]
            if "dns" in name:
                out.append((f"iptables-{fl} -t mangle -F VEIL_DNS", "missing rule"))
        if gateway:
            mark, tbl = ("0x2/0x2", "200") if "dns" in name else ("0x1/0x1", "100")
            out += [
                (f"ip rule del fwmark {mark} lookup {tbl}", "ip4: missing ip rule"),
                (f"ip -6 route del local ::/0 dev lo table {tbl}", "ip6: missing route"),
                (f"ip -6 rule add fwmark {mark} lookup {tbl}", "ip6: duplicate ip rule (2 times)"),
            ]
        return out

    def cycle(self, name, backend):
        self.skip_unsupported(name, backend)
        ns = self.lab.netns(f"{name[0]}{'d' if 'dns' in name else ''}{SHORT[backend]}")
        add_unrelated(ns, backend)
        before = snapshot(ns)
        self.assertEqual(self.veil("verify", name, backend, ns).returncode, 1)

        self.ok("install", name, backend, ns)
        installed = snapshot(ns)
        self.assertNotEqual(installed, before)
        self.rendered_equals_installed(ns, name, backend)
        r = self.ok("install", name, backend, ns)
        self.assertIn("0 changes", r.stderr)
        self.assertSame(installed, snapshot(ns), "install twice")
        self.ok("verify", name, backend, ns)

        for command, report in self.tampers(name, backend):
            with self.subTest(tamper=command):
                ns.sh(command)
                r = self.veil("verify", name, backend, ns)
                self.assertEqual(r.returncode, 1, f"verify passed after: {command}\n{r.stdout}{r.stderr}")
                self.assertIn(report, r.stdout)
                self.ok("install", name, backend, ns)
                self.ok("verify", name, backend, ns)
                self.assertSame(installed, snapshot(ns), f"repaired after {command}")

        self.ok("teardown", name, backend, ns)
        self.assertSame(before, snapshot(ns), "teardown")
        self.assertEqual(self.veil("verify", name, backend, ns).returncode, 1)
        r = self.ok("teardown", name, backend, ns)
        self.assertIn("0 changes", r.stderr)
        self.assertSame(before, snapshot(ns), "teardown twice")

    def killed(self, name, backend):
        """Stopped after each step (the hook) and at random moments (SIGKILL),
        then installed again: exactly the rules of a clean install."""
        self.skip_unsupported(name, backend)
        ns = self.lab.netns(f"k{name[0]}{SHORT[backend]}")
        add_unrelated(ns, backend)
        before = snapshot(ns)
        steps = int(re.search(r"(\d+) change", self.ok("install", name, backend, ns).stderr).group(1))
        installed = snapshot(ns)
        self.ok("teardown", name, backend, ns)
        for n in range(1, steps):
            r = self.veil("install", name, backend, ns, env={"VEIL_IPTABLES_KILL_AFTER": str(n)})
            self.assertEqual(r.returncode, -9, f"the hook did not stop install after step {n}: {r.stderr}")
            self.assertEqual(self.veil("verify", name, backend, ns).returncode, 1, f"complete after {n} steps?")
            self.ok("install", name, backend, ns)
            self.ok("verify", name, backend, ns)
            self.assertSame(installed, snapshot(ns), f"install after a stop at step {n}")
            self.ok("teardown", name, backend, ns)
            self.assertSame(before, snapshot(ns), f"teardown after a stop at step {n}")
        rng = random.Random(os.getpid())
        for i in range(6):
            p = subprocess.Popen([lab.VEIL_IPTABLES, "install" if i % 3 else "teardown", "--config",
                                  self.configs[name], "--backend", backend, "--netns", ns.name],
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            time.sleep(rng.uniform(0, 0.04))
            p.kill()
            p.wait()
        self.ok("install", name, backend, ns)
        self.ok("verify", name, backend, ns)
        self.assertSame(installed, snapshot(ns), "install after random kills")
        self.ok("teardown", name, backend, ns)
        self.assertSame(before, snapshot(ns), "teardown after random kills")


class Matrix(IptablesCase):
    """Every config × backend: test_install_repair_teardown_* and test_killed_install_*."""


def _generate():
    for name in CONFIGS:
        for backend in BACKENDS:
            suffix = f"{name}_{backend}".replace("-", "_")
            setattr(Matrix, f"test_install_repair_teardown_{suffix}",
                    lambda self, n=name, b=backend: self.cycle(n, b))
            if "dns" not in name:
                setattr(Matrix, f"test_killed_install_{suffix}",
                        lambda self, n=name, b=backend: self.killed(n, b))


_generate()


class Scope(IptablesCase):
    """--netns, --family and changes of config."""

    def test_netns_acts_in_the_named_namespace_only(self):
        a, b = self.lab.netns("na"), self.lab.netns("nb")
        # The machine's own namespace: only read, and only its firewall, ip
        # rules and sets (its routes change as other tests move veths).
        host = lambda: {k: v for k, v in snapshot().items() if "route" not in k}
        host_before, b_before = host(), snapshot(b)
        for backend in ("iptables", "iptables-nft", "nft"):  # iptables: the system's alternative
            self.ok("install", "gateway", backend, a)
            self.ok("verify", "gateway", backend, a)
            self.assertEqual(self.veil("verify", "gateway", backend, b).returncode, 1)
            self.assertSame(b_before, snapshot(b), "the other namespace")
            self.assertSame(host_before, host(), "the machine's own namespace")
            self.ok("teardown", "gateway", backend, a)
        r = subprocess.run([lab.VEIL_IPTABLES, "verify", "--config", self.configs["gateway"], "--netns",
                            f"veil-{self.lab.tag}-absent"], capture_output=True, text=True)
        self.assertEqual(r.returncode, 3)
        self.assertIn("/run/netns/", r.stderr)

    def test_family_limits_what_is_installed_verified_and_removed(self):
        for backend in ("iptables-legacy", "nft"):
            with self.subTest(backend=backend):
                ns = self.lab.netns(f"f{SHORT[backend]}")
                add_unrelated(ns, backend)
                before = snapshot(ns)
                self.ok("install", "sidecar", backend, ns, family="4")
                self.ok("verify", "sidecar", backend, ns, family="4")
                r = self.veil("verify", "sidecar", backend, ns)
                self.assertEqual(r.returncode, 1)
                self.assertTrue(r.stdout)
                for line in r.stdout.splitlines():  # only IPv6 is missing
                    self.assertRegex(line, r"^ip6[ :]|[A-Za-z_]6\b")
                after4 = snapshot(ns)
                for key in ("ip6tables-legacy-save", "ip6tables-nft-save", "ip -6 rule", "ip -6 route"):
                    self.assertEqual(after4[key], before[key], key)
                self.ok("install", "sidecar", backend, ns, family="6")
                self.ok("verify", "sidecar", backend, ns)
                self.ok("teardown", "sidecar", backend, ns, family="4")
                self.ok("verify", "sidecar", backend, ns, family="6")
                self.assertEqual(self.veil("verify", "sidecar", backend, ns, family="4").returncode, 1)
                self.ok("teardown", "sidecar", backend, ns)
                self.assertSame(before, snapshot(ns), "teardown")

    def test_a_changed_config_is_converged_to(self):
        """Another style, another set timeout: install moves from the old
        rules to the new ones (stale chains gone, the set swapped in place)."""
        ns = self.lab.netns("chg")
        backend = "iptables-nft"
        add_unrelated(ns, backend)
        before = snapshot(ns)
        self.ok("install", "sidecar-dns", backend, ns)
        longer = self.lab.path("longer.yaml")
        with open(longer, "w") as f:
            f.write(HEAD + CONFIGS["sidecar-dns"] + "  dns: {ttl_ceiling: 2h}\n")
        r = self.veil("verify", "", backend, ns, config=longer)
        self.assertEqual(r.returncode, 1)
        self.assertIn("ipset veil_targets4 is not 'hash:ip family inet timeout 7200'", r.stdout)
        self.ok("install", "", backend, ns, config=longer)
        self.ok("verify", "", backend, ns, config=longer)
        self.assertIn("timeout 7200", ns.exec("ipset", "save", "veil_targets4").stdout)
        # Now as a gateway: the sidecar's nat chain and jumps are stale.
        self.ok("install", "gateway", backend, ns)
        r = self.ok("verify", "gateway", backend, ns)
        self.assertNotIn("VEIL_OUTPUT", ns.exec("iptables-nft-save").stdout)
        self.ok("teardown", "gateway", backend, ns)
        # The sets are named by the config, so teardown removes them too.
        self.ok("teardown", "sidecar-dns", backend, ns)
        self.assertSame(before, snapshot(ns), "teardown")

    def test_verify_reports_errors_and_usage_problems_with_their_codes(self):
        r = subprocess.run([lab.VEIL_IPTABLES, "verify"], capture_output=True, text=True)
        self.assertEqual(r.returncode, 2)
        bad = self.lab.path("bad.yaml")
        with open(bad, "w") as f:
            f.write(HEAD + "capture:\n  style: router\n")
        r = subprocess.run([lab.VEIL_IPTABLES, "render", "--config", bad], capture_output=True, text=True)
        self.assertEqual(r.returncode, 2)
        self.assertIn(f"{bad}:7:10: capture.style must be sidecar or gateway", r.stderr)
        none = self.lab.path("none.yaml")
        with open(none, "w") as f:
            f.write(HEAD)
        r = subprocess.run([lab.VEIL_IPTABLES, "install", "--config", none], capture_output=True, text=True)
        self.assertEqual(r.returncode, 2)
        self.assertIn("no capture: section", r.stderr)



if __name__ == "__main__":
    unittest.main(verbosity=2)
