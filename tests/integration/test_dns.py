"""DNS-following destinations (capture.destinations: dns): veild reads the DNS
answers the rules queue to it (NFQUEUE, --queue-bypass), puts the addresses
of target hosts in the sets the capture rules match, and accepts every
answer untouched. Once with ipsets + iptables, once with nft sets.

    [app ns: dig, curl, veild (uid 65534 + CAP_NET_ADMIN), sets, rules]
        198.18.0.1  fd00:18::1
            |
    [net ns: dnsmasq 198.18.0.2:53, mock API on A, B, N :443]
        198.18.0.2/.3  fd00:18::2
        A = 198.18.5.10 / fd00:5::10  (api.anthropic.com, first answer)
        B = 198.18.5.11 / fd00:5::11  (api.anthropic.com, after the change)
        N = 198.18.5.20 / fd00:5::20  (other.example.com: not a target)

The rules are what veil-iptables renders for this config (the contract in
ARCHITECTURE.md, "DNS-following destinations"), written out here so this
test does not depend on it. The tests run in name order; each builds on the
state the previous one left (the last stops veild).
"""

import json
import os
import re
import signal
import subprocess
import sys
import time
import unittest

import lab

QUEUE = 77
FLOOR, CEILING, ANSWER_TTL = 60, 300, 120
A4, B4, N4 = "198.18.5.10", "198.18.5.11", "198.18.5.20"
A6, B6, N6 = "fd00:5::10", "fd00:5::11", "fd00:5::20"
DNS4, DNS6, RAW_SENDER = "198.18.0.2", "fd00:18::2", "198.18.0.3"

IPTABLES_RULES = f"""
ipset create veil_targets4 hash:ip family inet timeout {CEILING}
ipset create veil_targets6 hash:ip family inet6 timeout {CEILING}
for ipt in iptables ip6tables; do
  if [ $ipt = iptables ]; then set=veil_targets4; else set=veil_targets6; fi
  $ipt -t mangle -N VEIL_DNS
  $ipt -t mangle -A VEIL_DNS -p udp --sport 53 -j NFQUEUE --queue-num {QUEUE} --queue-bypass -m comment --comment veil
  $ipt -t mangle -A PREROUTING -j VEIL_DNS -m comment --comment veil
  $ipt -t nat -N VEIL_OUTPUT
  $ipt -t nat -A VEIL_OUTPUT -m owner --uid-owner {lab.VEIL_UID} -j RETURN
  $ipt -t nat -A VEIL_OUTPUT -o lo -j RETURN
  $ipt -t nat -A VEIL_OUTPUT -p tcp --dport 443 -m set --match-set $set dst -j REDIRECT --to-ports 15001
  $ipt -t nat -A OUTPUT -p tcp -j VEIL_OUTPUT
done
"""

NFT_RULES = f"""
table inet veil {{
  set veil_targets4 {{ type ipv4_addr; flags timeout; }}
  set veil_targets6 {{ type ipv6_addr; flags timeout; }}
  chain output {{
    type nat hook output priority -100; policy accept;
    meta skuid {lab.VEIL_UID} return
    oifname "lo" return
    tcp dport 443 ip daddr @veil_targets4 redirect to :15001
    tcp dport 443 ip6 daddr @veil_targets6 redirect to :15001
  }}
}}
"""

NFT_DNS_QUEUE = f"""
table inet veil {{
  chain dns {{
    type filter hook prerouting priority mangle; policy accept;
    udp sport 53 queue num {QUEUE} bypass comment "veil"
  }}
}}
"""

# Kernels built without CONFIG_NFT_QUEUE (this CI's is one) have no native
# nft `queue` statement; the xt NFQUEUE target through nft_compat
# (iptables-nft) queues the answers instead. Everything veild does — the
# queue, the nft sets, the capture rules matching them — is the same.
NFT_DNS_QUEUE_XT = f"""
for ipt in iptables-nft ip6tables-nft; do
  $ipt -t mangle -N VEIL_DNS
  $ipt -t mangle -A VEIL_DNS -p udp --sport 53 -j NFQUEUE --queue-num {QUEUE} --queue-bypass -m comment --comment veil
  $ipt -t mangle -A PREROUTING -j VEIL_DNS -m comment --comment veil
done
"""


def metric(log_text, name):
    """The last value of `name` in the `event=metrics` summaries of a log."""
    values = re.findall(rf"\b{name}=(\d+)", log_text)
    return int(values[-1]) if values else None


class DnsFollowing:
    BACKEND = None  # "iptables" | "nft"

    @classmethod
    def setUpClass(cls):
        cls.lab = lab.Lab()
        L = cls.lab
        try:
            cls.app, cls.net = L.netns("app"), L.netns("net")
            L.veth(cls.app, "eth0", cls.net, "eth0")
            cls.app.sh("ip addr add 198.18.0.1/24 dev eth0 && ip route add default via 198.18.0.2 && "
                       "ip -6 addr add fd00:18::1/64 dev eth0 nodad && ip -6 route add default via fd00:18::2")
            cls.net.sh("ip addr add 198.18.0.2/24 dev eth0 && ip addr add 198.18.0.3/24 dev eth0 && "
                       "ip -6 addr add fd00:18::2/64 dev eth0 nodad && " +
                       " && ".join(f"ip addr add {a}/32 dev lo" for a in (A4, B4, N4)) + " && " +
                       " && ".join(f"ip -6 addr add {a}/128 dev lo" for a in (A6, B6, N6)))

            pki = lab.Pki(L.dir)
            cls.pki = pki
            good, other = pki.leaf("api.anthropic.com"), pki.leaf("other.example.com")
            listen = []
            for addr in (A4, B4, N4):
                listen += ["--listen", f"{addr}:443"]
            for addr in (A6, B6, N6):
                listen += ["--listen", f"[{addr}]:443"]
            L.spawn(cls.net, lab.PYTHON, lab.MOCK, *listen, "--cert", ":".join(good),
                    "--sni", "other.example.com=" + ":".join(other), "--record", L.path("upstream.jsonl"),
                    log="mock.log")
            for addr in (A4, B4, N4, A6, B6, N6):
                lab.wait_port(cls.net, addr, 443)

            cls.hosts = L.path("dns-hosts")
            cls.write_hosts(A4, A6)
            # -k: stays in the foreground, so the pid we hold is dnsmasq's.
            cls.dnsmasq = L.spawn(cls.net, "dnsmasq", "-k", "--conf-file=/dev/null", "--no-resolv", "--no-hosts",
                                  f"--addn-hosts={cls.hosts}", f"--listen-address={DNS4},{DNS6}",
                                  "--bind-interfaces", f"--local-ttl={ANSWER_TTL}", "--log-facility=-",
                                  "--log-queries", f"--pid-file={L.path('dnsmasq.pid')}", log="dnsmasq.log")
            cls.wait_dns()

            if cls.BACKEND == "nft":
                cls.app.exec("nft", "-f", "-", input=NFT_RULES)
                r = cls.app.exec("nft", "-f", "-", input=NFT_DNS_QUEUE, check=False)
                if r.returncode != 0:
                    if "No such file or directory" not in r.stderr:
                        raise RuntimeError(r.stderr)
                    sys.stderr.write("note: this kernel has no nft queue statement (CONFIG_NFT_QUEUE); "
                                     "DNS answers are queued with xt NFQUEUE via iptables-nft\n")
                    cls.app.sh(NFT_DNS_QUEUE_XT)
            else:
                cls.app.sh(IPTABLES_RULES)

            cls.ca = lab.make_lab_ca(L, owner_uid=lab.VEIL_UID)
            cls.config = cls.write_config("veil.yaml", "veil_targets")
            cls.veild = cls.start_veild("veild.log", cls.config)
        except BaseException:
            cls.lab.close()
            raise

    @classmethod
    def tearDownClass(cls):
        cls.lab.close()

    # -- helpers

    @classmethod
    def write_hosts(cls, v4, v6):
        tmp = cls.hosts + ".tmp"
        with open(tmp, "w") as f:
            f.write(f"{v4} api.anthropic.com\n{v6} api.anthropic.com\n{N4} other.example.com\n"
                    f"{N6} other.example.com\n")
        os.chmod(tmp, 0o644)
        os.replace(tmp, cls.hosts)

    @classmethod
    def wait_dns(cls, timeout=20):
        deadline = time.time() + timeout
        while time.time() < deadline:
            r = cls.net.exec("dig", "+short", "+tries=1", "+time=1", f"@{DNS4}", "other.example.com", "A",
                             check=False)
            if r.stdout.strip() == N4:
                return
            time.sleep(0.2)
        raise RuntimeError("dnsmasq does not answer")

    @classmethod
    def write_config(cls, name, set_name):
        path = cls.lab.path(name)
        lab.write_config(path, [("sidecar", "redirect", "[::]:15001")], cls.ca, cls.pki.ca, extra=f"""capture:
  style: sidecar
  backend: {cls.BACKEND}
  exclude_uids: [{lab.VEIL_UID}]
  destinations: dns
  dns: {{queue: {QUEUE}, ttl_floor: {FLOOR}s, ttl_ceiling: {CEILING}s, set: {set_name}}}
""")
        return path

    @classmethod
    def start_veild(cls, log, config, caps=True):
        # veild's own uid (excluded from redirection) with CAP_NET_ADMIN as
        # an ambient capability: the queue and the sets need it.
        cmd = ["setpriv", f"--reuid={lab.VEIL_UID}", f"--regid={lab.VEIL_UID}", "--clear-groups"]
        if caps:
            cmd += ["--inh-caps=+net_admin", "--ambient-caps=+net_admin"]
        p = cls.lab.spawn(cls.app, *cmd, lab.VEILD, "--config", config, "--workers", "1", log=log)
        if caps:
            lab.wait_port(cls.app, "127.0.0.1", 15001, proc=p)
            cls.wait_log(log, "event=dns_following")
        return p

    @classmethod
    def wait_log(cls, log, needle, timeout=30):
        deadline = time.time() + timeout
        while time.time() < deadline:
            text = cls.read_log(log)
            if needle in text:
                return text
            time.sleep(0.1)
        raise AssertionError(f"{needle!r} never appeared in {log}")

    @classmethod
    def read_log(cls, log):
        path = cls.lab.path(log)
        if not os.path.exists(path):
            return ""
        with open(path, errors="replace") as f:
            return f.read()

    def dig(self, name, qtype="A", server=DNS4):
        r = self.app.exec("dig", "+short", "+tries=2", "+time=3", f"@{server}", name, qtype, check=False)
        self.assertEqual(r.returncode, 0, r.stderr)
        return r.stdout.split()

    def set_entries(self, family):
        """{address: seconds left} of the set of `family` (4 or 6)."""
        name = f"veil_targets{family}"
        if self.BACKEND == "nft":
            out = self.app.exec("nft", "-j", "list", "set", "inet", "veil", name).stdout
            entries = {}
            for obj in json.loads(out)["nftables"]:
                for e in obj.get("set", {}).get("elem", []):
                    if isinstance(e, dict) and "elem" in e:
                        entries[e["elem"]["val"]] = int(e["elem"].get("expires", 0))
                    else:
                        entries[e] = None
            return entries
        out = self.app.exec("ipset", "list", name, "-output", "save").stdout
        entries = {}
        for line in out.splitlines():
            m = re.match(rf"add {name} (\S+) timeout (\d+)", line)
            if m:
                entries[m.group(1)] = int(m.group(2))
        return entries

    def assert_in_set(self, family, address):
        entries = self.set_entries(family)
        self.assertIn(address, entries, f"set {family}: {entries}")
        left = entries[address]
        # The answer's TTL (120 s, inside [floor, ceiling]), minus the
        # seconds since the lookup.
        self.assertIsNotNone(left)
        self.assertGreaterEqual(left, ANSWER_TTL - 30)
        self.assertLessEqual(left, ANSWER_TTL)

    def metrics(self):
        """veild's counters: SIGHUP makes it log a summary line."""
        before = self.read_log("veild.log").count("event=metrics")
        self.veild.send_signal(signal.SIGHUP)
        deadline = time.time() + 10
        while time.time() < deadline:
            text = self.read_log("veild.log")
            if text.count("event=metrics") > before:
                return text
            time.sleep(0.05)
        self.fail("veild wrote no metrics line after SIGHUP")

    def curl(self, host, cafile, name="api.anthropic.com"):
        url_host = f"[{host}]" if ":" in host else host
        return self.app.exec("curl", "-sS", "--max-time", "15", "--cacert", cafile, "--resolve",
                             f"{name}:443:{url_host}", f"https://{name}/", check=False)

    # -- tests, in order

    def test_1_first_answer_puts_address_a_in_the_set(self):
        self.assertEqual(self.dig("api.anthropic.com"), [A4])
        self.assertEqual(self.dig("api.anthropic.com", "AAAA", server=DNS6), [A6])  # an IPv6 DNS packet
        self.assert_in_set(4, A4)
        self.assert_in_set(6, A6)
        self.assertNotIn(B4, self.set_entries(4))
        log = self.read_log("veild.log")
        self.assertRegex(log, rf"event=dns_target name=api.anthropic.com address={re.escape(A4)} "
                              rf"ttl={ANSWER_TTL} timeout={ANSWER_TTL} set=veil_targets4")

    def test_2_changed_answer_adds_address_b(self):
        self.write_hosts(B4, B6)
        self.dnsmasq.send_signal(signal.SIGHUP)  # re-reads the hosts file, clears its cache
        deadline = time.time() + 10
        while self.dig("api.anthropic.com") != [B4]:
            self.assertLess(time.time(), deadline, "dnsmasq kept the old answer")
            time.sleep(0.2)
        self.assertEqual(self.dig("api.anthropic.com", "AAAA"), [B6])
        self.assert_in_set(4, A4)
        self.assert_in_set(4, B4)
        self.assert_in_set(6, B6)

    def test_3_non_target_answers_stay_out_of_the_sets(self):
        self.assertEqual(self.dig("other.example.com"), [N4])
        self.assertEqual(self.dig("other.example.com", "AAAA"), [N6])
        self.assertNotIn(N4, self.set_entries(4))
        self.assertNotIn(N6, self.set_entries(6))

    def test_4_connects_to_set_addresses_are_intercepted_others_are_not(self):
        for addr in (B4, B6):
            with self.subTest(addr=addr):
                # Intercepted: the certificate chains to the lab CA.
                r = self.curl(addr, f"{self.ca}/ca.pem")
                self.assertEqual(r.returncode, 0, r.stderr)
                self.assertIn("hello from the mock", r.stdout)
        intercepted = metric(self.metrics(), "intercepted")
        self.assertGreaterEqual(intercepted, 2)
        for addr in (N4, N6):
            with self.subTest(addr=addr):
                # Same target SNI, but the address is not in a set: the
                # connection goes straight to the mock, whose certificate
                # does not chain to the lab CA (curl 60) but to its own.
                r = self.curl(addr, f"{self.ca}/ca.pem")
                self.assertEqual(r.returncode, 60, r.stderr)
                r = self.curl(addr, self.pki.ca)
                self.assertEqual(r.returncode, 0, r.stderr)
        log = self.metrics()
        self.assertEqual(metric(log, "intercepted"), intercepted)
        self.assertGreaterEqual(metric(log, "dns_answers"), 6)  # the digs so far
        self.assertGreaterEqual(metric(log, "dns_added"), 4)
        self.assertEqual(metric(log, "dns_set_errors"), 0)

    def test_5_malformed_answer_reaches_the_client_untouched_and_is_counted(self):
        before = metric(self.metrics(), "dns_malformed")
        receiver = self.app.popen(lab.PYTHON, "-c", """
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("198.18.0.1", 40053))
s.settimeout(10)
print("ready", flush=True)
data, peer = s.recvfrom(65536)
print(data.hex(), peer[1], flush=True)
""", stdout=subprocess.PIPE, text=True)
        try:
            self.assertEqual(receiver.stdout.readline().strip(), "ready")
            # A DNS header announcing one question and one answer, then a
            # name cut short: not a readable message.
            payload = bytes.fromhex("beef81800001000100000000") + b"\x03api\x09anthr"
            self.net.exec(lab.PYTHON, "-c", f"""
import socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("{RAW_SENDER}", 53))
s.sendto(bytes.fromhex("{payload.hex()}"), ("198.18.0.1", 40053))
""")
            line = receiver.stdout.readline().split()
            receiver.wait(15)
        finally:
            if receiver.poll() is None:
                receiver.kill()
                receiver.wait()
        self.assertEqual(line, [payload.hex(), "53"])
        log = self.metrics()
        self.assertEqual(metric(log, "dns_malformed"), before + 1)
        self.assertIn('event=dns_malformed reason="name truncated"', log)

    def test_6_missing_set_is_a_logged_error_and_dns_still_works(self):
        # A second veild would need the same queue: stop the first one for
        # this and the next test.
        self.assertEqual(self.lab.stop(self.veild), 0)
        self.assertIn("event=stopped", self.read_log("veild.log"))
        cfg = self.write_config("missing.yaml", "veil_nosuch")
        p = self.start_veild("veild-missing.log", cfg)
        try:
            for _ in range(3):
                self.assertEqual(self.dig("api.anthropic.com"), [B4])
            log = self.wait_log("veild-missing.log", "event=dns_set_error")
            self.assertIn('reason="set does not exist"', log)
            self.assertIn("veil_nosuch4", log)
            self.assertEqual(log.count("event=dns_set_error"), 1)  # once per interval, not per packet
        finally:
            self.assertEqual(self.lab.stop(p), 0)
        log = self.read_log("veild-missing.log")
        self.assertGreaterEqual(metric(log, "dns_set_errors"), 3)
        self.assertEqual(metric(log, "dns_added"), 0)

    def test_7_without_cap_net_admin_veild_refuses_to_start(self):
        p = self.start_veild("veild-nocap.log", self.config, caps=False)
        self.assertNotEqual(p.wait(60), 0)
        log = self.read_log("veild-nocap.log")
        self.assertIn(f"cannot bind NFQUEUE {QUEUE}", log)
        self.assertIn("CAP_NET_ADMIN", log)

    def test_8_with_veild_stopped_dns_still_resolves(self):
        self.assertIsNotNone(self.veild.poll(), "veild should be stopped by now")
        self.assertEqual(self.dig("api.anthropic.com"), [B4])
        self.assertEqual(self.dig("api.anthropic.com", "AAAA", server=DNS6), [B6])


class IptablesBackend(DnsFollowing, unittest.TestCase):
    BACKEND = "iptables"


class NftBackend(DnsFollowing, unittest.TestCase):
    BACKEND = "nft"


if __name__ == "__main__":
    unittest.main(verbosity=2)
