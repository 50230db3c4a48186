"""veild on a gateway: mangle PREROUTING TPROXY with policy routing, clients
in another namespace route through it, IPv4 and IPv6.

    [cli ns] --veth-- [gw ns: veild, TPROXY] --veth-- [up ns: mock API]
    198.18.1.2        198.18.1.1 | 198.18.2.1         198.18.2.2
    fd00:1::2         fd00:1::1  | fd00:2::1          fd00:2::2
"""

import json
import signal
import time
import unittest

import lab
from test_sidecar import PLANTED, request_body


class Gateway(unittest.TestCase):
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
            cls.up.sh("ip addr add 198.18.2.2/24 dev eth0 && ip route add default via 198.18.2.1 && "
                      "ip -6 addr add fd00:2::2/64 dev eth0 nodad && ip -6 route add default via fd00:2::1")
            cls.gw.sh("ip addr add 198.18.1.1/24 dev eth0 && ip addr add 198.18.2.1/24 dev eth1 && "
                      "ip -6 addr add fd00:1::1/64 dev eth0 nodad && ip -6 addr add fd00:2::1/64 dev eth1 nodad && "
                      "sysctl -qw net.ipv4.ip_forward=1 net.ipv6.conf.all.forwarding=1 "
                      "net.ipv4.conf.all.rp_filter=0 net.ipv4.conf.default.rp_filter=0")
            pki = lab.Pki(L.dir)
            cls.pki = pki
            good = pki.leaf("api.anthropic.com")
            other = pki.leaf("other.example.com")
            cls.record = L.path("upstream.jsonl")
            L.spawn(cls.up, lab.PYTHON, lab.MOCK, "--listen", "198.18.2.2:443", "--listen", "[fd00:2::2]:443",
                    "--cert", ":".join(good), "--sni", "other.example.com=" + ":".join(other),
                    "--record", cls.record, log="mock.log")
            lab.wait_port(cls.up, "198.18.2.2", 443)
            lab.wait_port(cls.up, "fd00:2::2", 443)

            # TPROXY: packets to :443 that are not part of a connection veild
            # already owns go to veild's transparent listener.
            for ipt, ip, any_ in (("iptables", "ip", "0.0.0.0/0"), ("ip6tables", "ip -6", "::/0")):
                port = 15002 if ipt == "iptables" else 15003
                cls.gw.sh(f"{ipt} -t mangle -N VEIL_DIVERT && "
                          f"{ipt} -t mangle -A VEIL_DIVERT -j MARK --set-mark 0x1 && "
                          f"{ipt} -t mangle -A VEIL_DIVERT -j ACCEPT && "
                          f"{ipt} -t mangle -N VEIL_PREROUTING && "
                          f"{ipt} -t mangle -A VEIL_PREROUTING -p tcp -m socket --transparent -j VEIL_DIVERT && "
                          f"{ipt} -t mangle -A VEIL_PREROUTING -p tcp --dport 443 -j TPROXY "
                          f"--tproxy-mark 0x1/0x1 --on-port {port} && "
                          f"{ipt} -t mangle -A PREROUTING -j VEIL_PREROUTING && "
                          f"{ip} rule add fwmark 0x1 lookup 100 && "
                          f"{ip} route add local {any_} dev lo table 100")
            cls.ca = lab.make_lab_ca(L)
            cls.config = L.path("veil.yaml")
            lab.write_config(cls.config, [("gw4", "tproxy", "0.0.0.0:15002"), ("gw6", "tproxy", "[::]:15003")],
                             cls.ca, pki.ca)
            cls.veild = L.spawn(cls.gw, lab.VEILD, "--config", cls.config, "--workers", "2", log="veild.log")
            lab.wait_port(cls.gw, "198.18.1.1", 15002, proc=cls.veild)
            lab.wait_port(cls.gw, "fd00:1::1", 15003)
        except BaseException:
            cls.lab.close()
            raise

    @classmethod
    def tearDownClass(cls):
        cls.lab.close()

    def curl(self, *args, host="198.18.2.2"):
        return self.cli.exec("curl", "-sS", "--max-time", "20", "--cacert", f"{self.ca}/ca.pem",
                             "--resolve", f"api.anthropic.com:443:{host}", *args, check=False)

    def post(self, body, host="198.18.2.2", stream=False):
        args = ["-X", "POST", "-H", "content-type: application/json", "--data-binary", body,
                "https://api.anthropic.com/v1/messages"]
        return self.curl(*(["-N"] + args if stream else args), host=host)

    def test_masked_stream_through_the_gateway(self):
        r = self.post(request_body(stream=True), stream=True)
        self.assertEqual(r.returncode, 0, r.stderr)
        text = "".join(json.loads(l[6:])["delta"].get("text", "") for l in r.stdout.splitlines()
                       if l.startswith("data: ") and '"content_block_delta"' in l)
        for original in PLANTED:
            self.assertIn(original, text)
        body = lab.records(self.record)[-1]["body"]
        for original in PLANTED:
            self.assertNotIn(original, body)

    def test_ipv6_through_the_gateway(self):
        r = self.post(request_body(), host="fd00:2::2")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("arn:aws:iam::123456789012:role/Admin", json.loads(r.stdout)["content"][0]["text"])
        self.assertNotIn("123456789012", lab.records(self.record)[-1]["body"])

    def test_the_client_sees_the_original_destination_as_its_peer(self):
        # TPROXY keeps addresses: the upstream sees the gateway's connection,
        # the client believes it talks to 198.18.2.2 and verifies the name.
        r = self.curl("-w", "%{remote_ip}", "-o", "/dev/null", "https://api.anthropic.com/")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stdout, "198.18.2.2")

    def test_a_connection_to_the_listener_itself_is_refused_and_counted(self):
        code = ("import socket\n"
                "s=socket.create_connection(('198.18.1.1',15002),timeout=5)\n"
                "s.sendall(b'x')\n"
                "print(repr(s.recv(10)))\n")
        r = self.cli.exec(lab.PYTHON, "-c", code, check=False)
        self.assertIn("b''", r.stdout + r.stderr.replace("ConnectionResetError", "b''"))
        with open(self.lab.path("veild.log")) as f:
            self.assertIn("connection_refused", f.read())

    def test_non_target_sni_passes_through_with_the_real_certificate(self):
        r = self.cli.exec("curl", "-sS", "--max-time", "10", "--cacert", self.pki.ca, "--resolve",
                          "other.example.com:443:198.18.2.2", "https://other.example.com/", check=False)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("hello from the mock", r.stdout)

    def test_zz_sigterm_drains_and_exits_cleanly(self):
        # Runs last (zz): a request in flight finishes, then veild exits 0.
        slow_body = json.dumps(dict(json.loads(request_body(stream=True)), mock_delay=2))
        slow = self.cli.popen("curl", "-sS", "--max-time", "20", "--cacert", f"{self.ca}/ca.pem", "--resolve",
                              "api.anthropic.com:443:198.18.2.2", "-X", "POST", "-H", "content-type: application/json",
                              "--data-binary", slow_body, "-N", "https://api.anthropic.com/v1/messages",
                              stdout=lab.subprocess.PIPE, stderr=lab.subprocess.PIPE)
        time.sleep(0.5)
        self.assertIsNone(slow.poll(), "the slow stream ended before SIGTERM")
        self.veild.send_signal(signal.SIGTERM)
        out, err = slow.communicate(timeout=30)
        self.assertEqual(slow.returncode, 0, err)
        self.assertIn(b"message_stop", out)
        self.assertEqual(self.veild.wait(timeout=30), 0)
        with open(self.lab.path("veild.log")) as f:
            log = f.read()
        self.assertIn("event=stopped", log)


if __name__ == "__main__":
    unittest.main(verbosity=2)
