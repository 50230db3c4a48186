"""The rules veil-iptables installs really move traffic, for each backend:

sidecar   [app ns: client, redirect listener :15001] --veth-- [peer ns: "real" :443]
          198.18.10.1 / fd00:10::1                           198.18.10.2,.3 / fd00:10::2,::3
gateway   [cli ns] --eth0-- [gw ns: transparent listener :15002] --eth1-- [up ns: "real" :443]
          198.18.1.2        198.18.1.1 | 198.18.2.1                        198.18.2.2,.3
          fd00:1::2         fd00:1::1  | fd00:2::1                         fd00:2::2,::3

A TCP client to :443 reaches the listener (REDIRECT, or TPROXY keeping the
original destination), an excluded uid or a skipped destination reaches the
real peer, QUIC is refused, IPv6 is refused when capture.ipv6 is off, and
with destinations: dns only members of the set are captured.
"""

import os
import unittest

import lab
from test_iptables import BACKENDS, flavour, nft_queue_supported

PEER = os.path.join(lab.HERE, "netpeer.py")
HEAD = ("listeners:\n"
        "  - {name: side, mode: redirect, address: \"[::]:15001\"}\n"
        "  - {name: gw, mode: tproxy, address: \"[::]:15002\"}\n"
        "targets:\n  - host: api.anthropic.com\n")


class Traffic(unittest.TestCase):
    def config(self, name, capture):
        path = self.lab.path(name + ".yaml")
        with open(path, "w") as f:
            f.write(HEAD + capture)
        return path

    def veil(self, command, config, backend, ns):
        r = lab.run(lab.VEIL_IPTABLES, command, "--config", config, "--backend", backend, "--netns", ns.name,
                    check=False)
        self.assertEqual(r.returncode, 0, f"{command}: {r.stdout}{r.stderr}")
        return r

    def tcp(self, ns, host, uid=None):
        return self.client(ns, "tcp", host, uid)

    def udp(self, ns, host, uid=None):
        return self.client(ns, "udp", host, uid)

    def client(self, ns, kind, host, uid):
        cmd = [lab.PYTHON, PEER, kind, host, "443"]
        if uid is not None:
            cmd = ["setpriv", f"--reuid={uid}", f"--regid={uid}", "--clear-groups", *cmd]
        return ns.exec(*cmd).stdout.strip()


class Sidecar(Traffic):
    # A REJECT in OUTPUT answers the application's own UDP send with EPERM
    # (the ICMP error it also generates arrives too late for that call).
    LOCAL_UDP_REJECT = "rejected"

    @classmethod
    def setUpClass(cls):
        cls.lab = lab.Lab()
        L = cls.lab
        try:
            cls.app, cls.peer = L.netns("app"), L.netns("peer")
            L.veth(cls.app, "eth0", cls.peer, "eth0")
            cls.app.sh("ip addr add 198.18.10.1/24 dev eth0 && ip -6 addr add fd00:10::1/64 dev eth0 nodad")
            cls.peer.sh("ip addr add 198.18.10.2/24 dev eth0 && ip addr add 198.18.10.3/24 dev eth0 && "
                        "ip -6 addr add fd00:10::2/64 dev eth0 nodad && ip -6 addr add fd00:10::3/64 dev eth0 nodad")
            L.spawn(cls.peer, lab.PYTHON, PEER, "serve", "real", "--udp", "198.18.10.2:443", "198.18.10.3:443",
                    "[fd00:10::2]:443", "[fd00:10::3]:443", log="real.log")
            L.spawn(cls.app, lab.PYTHON, PEER, "serve", "veil", "0.0.0.0:15001", "[::]:15001", log="veil.log")
            lab.wait_port(cls.peer, "198.18.10.2", 443)
            lab.wait_port(cls.peer, "fd00:10::2", 443)
            lab.wait_port(cls.app, "127.0.0.1", 15001)
            lab.wait_port(cls.app, "::1", 15001)
        except BaseException:
            cls.lab.close()
            raise

    @classmethod
    def tearDownClass(cls):
        cls.lab.close()

    def test_redirected_except_the_excluded_uid(self):
        cfg = self.config("sidecar", "capture:\n  style: sidecar\n  exclude_uids: [65534]\n")
        for backend in BACKENDS:
            with self.subTest(backend=backend):
                self.assertEqual(self.tcp(self.app, "198.18.10.2"), "real 198.18.10.2 443")  # before install
                self.veil("install", cfg, backend, self.app)
                try:
                    self.assertEqual(self.tcp(self.app, "198.18.10.2"), "veil 127.0.0.1 15001")
                    self.assertEqual(self.tcp(self.app, "fd00:10::2"), "veil ::1 15001")
                    self.assertEqual(self.tcp(self.app, "198.18.10.2", uid=65534), "real 198.18.10.2 443")
                    self.assertEqual(self.tcp(self.app, "fd00:10::2", uid=65534), "real fd00:10::2 443")
                    # QUIC is refused, so clients fall back to TCP; veild's own UDP is not.
                    self.assertEqual(self.udp(self.app, "198.18.10.2"), self.LOCAL_UDP_REJECT)
                    self.assertEqual(self.udp(self.app, "fd00:10::2"), self.LOCAL_UDP_REJECT)
                    self.assertEqual(self.udp(self.app, "198.18.10.2", uid=65534), "ping")
                finally:
                    self.veil("teardown", cfg, backend, self.app)
                self.assertEqual(self.tcp(self.app, "198.18.10.2"), "real 198.18.10.2 443")
                self.assertEqual(self.udp(self.app, "198.18.10.2"), "ping")

    def test_ipv6_off_is_refused_not_leaked(self):
        cfg = self.config("sidecar6", "capture:\n  style: sidecar\n  exclude_uids: [65534]\n  ipv6: false\n")
        for backend in BACKENDS:
            with self.subTest(backend=backend):
                self.veil("install", cfg, backend, self.app)
                try:
                    self.assertEqual(self.tcp(self.app, "fd00:10::2"), "refused")
                    self.assertEqual(self.udp(self.app, "fd00:10::2"), self.LOCAL_UDP_REJECT)
                    self.assertEqual(self.tcp(self.app, "198.18.10.2"), "veil 127.0.0.1 15001")
                    self.assertEqual(self.tcp(self.app, "fd00:10::2", uid=65534), "real fd00:10::2 443")
                finally:
                    self.veil("teardown", cfg, backend, self.app)

    def test_dns_destinations_capture_only_set_members(self):
        cfg = self.config("sidecardns", "capture:\n  style: sidecar\n  exclude_uids: [65534]\n  destinations: dns\n")
        for backend in BACKENDS:
            with self.subTest(backend=backend):
                if backend == "nft" and not nft_queue_supported():
                    self.skipTest("no nft queue expression in this kernel (CONFIG_NFT_QUEUE)")
                self.veil("install", cfg, backend, self.app)
                try:
                    self.assertEqual(self.tcp(self.app, "198.18.10.2"), "real 198.18.10.2 443")
                    # What veild does when a DNS answer names a target:
                    if backend == "nft":
                        self.app.sh("nft add element inet veil veil_targets4 '{ 198.18.10.2 timeout 60s }' && "
                                    "nft add element inet veil veil_targets6 '{ fd00:10::2 timeout 60s }'")
                    else:
                        self.app.sh("ipset add veil_targets4 198.18.10.2 timeout 60 && "
                                    "ipset add veil_targets6 fd00:10::2 timeout 60")
                    self.assertEqual(self.tcp(self.app, "198.18.10.2"), "veil 127.0.0.1 15001")
                    self.assertEqual(self.tcp(self.app, "fd00:10::2"), "veil ::1 15001")
                    self.assertEqual(self.tcp(self.app, "198.18.10.3"), "real 198.18.10.3 443")
                    # Elements are veild's: verify does not count them, install keeps them.
                    self.veil("verify", cfg, backend, self.app)
                    self.assertIn("0 changes", self.veil("install", cfg, backend, self.app).stderr)
                    self.assertEqual(self.tcp(self.app, "198.18.10.2"), "veil 127.0.0.1 15001")
                    self.assertEqual(self.udp(self.app, "198.18.10.2"), self.LOCAL_UDP_REJECT)
                    self.assertEqual(self.udp(self.app, "198.18.10.3"), "ping")
                finally:
                    self.veil("teardown", cfg, backend, self.app)
                self.assertNotIn("veil_targets", self.app.exec("ipset", "list", "-n").stdout)


class Gateway(Traffic):
    @classmethod
    def setUpClass(cls):
        cls.lab = lab.Lab()
        L = cls.lab
        try:
            cls.cli, cls.gw, cls.up = L.netns("cli"), L.netns("gw"), L.netns("up")
            L.veth(cls.cli, "eth0", cls.gw, "eth0")
            L.veth(cls.gw, "eth1", cls.up, "eth0")
            cls.cli.sh("ip addr add 198.18.1.2/24 dev eth0 && ip route add default via 198.18.1.1 && "
                       "ip -6 addr add fd00:1::2/64 dev eth0 nodad && ip -6 route add default via fd00:1::1")
            cls.up.sh("ip addr add 198.18.2.2/24 dev eth0 && ip addr add 198.18.2.3/24 dev eth0 && "
                      "ip route add default via 198.18.2.1 && "
                      "ip -6 addr add fd00:2::2/64 dev eth0 nodad && ip -6 addr add fd00:2::3/64 dev eth0 nodad && "
                      "ip -6 route add default via fd00:2::1")
            cls.gw.sh("ip addr add 198.18.1.1/24 dev eth0 && ip addr add 198.18.2.1/24 dev eth1 && "
                      "ip -6 addr add fd00:1::1/64 dev eth0 nodad && ip -6 addr add fd00:2::1/64 dev eth1 nodad && "
                      "sysctl -qw net.ipv4.ip_forward=1 net.ipv6.conf.all.forwarding=1 "
                      "net.ipv4.conf.all.rp_filter=0 net.ipv4.conf.default.rp_filter=0 "
                      "net.ipv4.conf.eth0.rp_filter=0 net.ipv4.conf.eth1.rp_filter=0")
            L.spawn(cls.up, lab.PYTHON, PEER, "serve", "real", "--udp", "198.18.2.2:443", "198.18.2.3:443",
                    "[fd00:2::2]:443", "[fd00:2::3]:443", log="up.log")
            L.spawn(cls.cli, lab.PYTHON, PEER, "serve", "client-side", "0.0.0.0:443", log="cli.log")
            L.spawn(cls.gw, lab.PYTHON, PEER, "serve", "tproxy", "--transparent", "0.0.0.0:15002", "[::]:15002",
                    log="tproxy.log")
            lab.wait_port(cls.up, "198.18.2.2", 443)
            lab.wait_port(cls.up, "fd00:2::2", 443)
            lab.wait_port(cls.cli, "198.18.1.2", 443)
            lab.wait_port(cls.gw, "198.18.1.1", 15002)
        except BaseException:
            cls.lab.close()
            raise

    @classmethod
    def tearDownClass(cls):
        cls.lab.close()

    def test_tproxy_keeps_the_original_destination_and_skips_what_it_should(self):
        cfg = self.config("gateway", "capture:\n  style: gateway\n  interfaces: [eth0]\n"
                                     "  skip_cidrs: [198.18.2.3/32, 'fd00:2::3/128']\n")
        for backend in BACKENDS:
            with self.subTest(backend=backend):
                self.assertEqual(self.tcp(self.cli, "198.18.2.2"), "real 198.18.2.2 443")  # before install
                self.veil("install", cfg, backend, self.gw)
                try:
                    self.assertEqual(self.tcp(self.cli, "198.18.2.2"), "tproxy 198.18.2.2 443")
                    self.assertEqual(self.tcp(self.cli, "fd00:2::2"), "tproxy fd00:2::2 443")
                    self.assertEqual(self.tcp(self.cli, "198.18.2.3"), "real 198.18.2.3 443")  # skipped
                    self.assertEqual(self.tcp(self.cli, "fd00:2::3"), "real fd00:2::3 443")
                    self.assertEqual(self.udp(self.cli, "198.18.2.2"), "refused")  # QUIC
                    self.assertEqual(self.udp(self.cli, "fd00:2::2"), "refused")
                    self.assertEqual(self.udp(self.cli, "198.18.2.3"), "ping")
                    # Only what comes in on eth0 is captured.
                    self.assertEqual(self.tcp(self.up, "198.18.1.2"), "client-side 198.18.1.2 443")
                finally:
                    self.veil("teardown", cfg, backend, self.gw)
                self.assertEqual(self.tcp(self.cli, "198.18.2.2"), "real 198.18.2.2 443")
                self.assertEqual(self.gw.exec("ip", "rule", "show").stdout.count("fwmark"), 0)

    def test_ipv6_off_is_refused_at_the_gateway(self):
        cfg = self.config("gateway6", "capture:\n  style: gateway\n  ipv6: false\n")
        for backend in BACKENDS:
            with self.subTest(backend=backend):
                self.veil("install", cfg, backend, self.gw)
                try:
                    self.assertEqual(self.tcp(self.cli, "fd00:2::2"), "refused")
                    self.assertEqual(self.udp(self.cli, "fd00:2::2"), "refused")
                    self.assertEqual(self.tcp(self.cli, "198.18.2.2"), "tproxy 198.18.2.2 443")
                    self.assertNotIn("fwmark", self.gw.exec("ip", "-6", "rule", "show").stdout)
                finally:
                    self.veil("teardown", cfg, backend, self.gw)

    def test_strict_rp_filter_gets_a_note_and_is_left_alone(self):
        cfg = self.config("gatewayrp", "capture:\n  style: gateway\n  interfaces: [eth0]\n")
        self.gw.sh("sysctl -qw net.ipv4.conf.eth0.rp_filter=1")
        try:
            r = lab.run(lab.VEIL_IPTABLES, "render", "--config", cfg, "--netns", self.gw.name)
            self.assertIn("note: rp_filter is strict (1) on eth0", r.stderr)
            self.assertNotIn("eth1", r.stderr)  # not a captured interface
            self.assertEqual(self.gw.exec("sysctl", "-n", "net.ipv4.conf.eth0.rp_filter").stdout.strip(), "1")
        finally:
            self.gw.sh("sysctl -qw net.ipv4.conf.eth0.rp_filter=0")
        r = lab.run(lab.VEIL_IPTABLES, "render", "--config", cfg, "--netns", self.gw.name)
        self.assertNotIn("rp_filter", r.stderr)


if __name__ == "__main__":
    unittest.main(verbosity=2)
