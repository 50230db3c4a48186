"""veild as a sidecar: nat OUTPUT REDIRECT in the application's namespace,
with the daemon's own uid excluded, IPv4 and IPv6.

    [app ns: curl / python + veild (uid 65534)] --veth-- [up ns: mock API]
       198.18.0.1/30  fd00:18::1/64                198.18.0.2  fd00:18::2
"""

import json
import os
import socket
import ssl
import unittest

import lab

PLANTED = {
    "i-0123456789abcdef0": "EC2",
    "10.0.1.5": "PRIVATE_IP",
    "arn:aws:iam::123456789012:role/Admin": "IAM_ARN",
    "AKIAIOSFODNN7EXAMPLE": "ACCESS_KEY",
    "vpc-0a1b2c3d": "VPC",
}


def request_body(stream=False, extra=""):
    text = ("Why can't i-0123456789abcdef0 (10.0.1.5, vpc-0a1b2c3d) assume "
            "arn:aws:iam::123456789012:role/Admin with key AKIAIOSFODNN7EXAMPLE? " + extra)
    return json.dumps({"model": "claude-test", "max_tokens": 64, "stream": stream,
                       "messages": [{"role": "user", "content": text}]})


class Sidecar(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.lab = lab.Lab()
        L = cls.lab
        try:
            cls.app = L.netns("app")
            cls.up = L.netns("up")
            L.veth(cls.app, "eth0", cls.up, "eth0")
            cls.app.sh("ip addr add 198.18.0.1/30 dev eth0 && ip -6 addr add fd00:18::1/64 dev eth0 nodad")
            cls.up.sh("ip addr add 198.18.0.2/30 dev eth0 && ip -6 addr add fd00:18::2/64 dev eth0 nodad")

            pki = lab.Pki(L.dir)
            cls.pki = pki
            good = pki.leaf("api.anthropic.com")
            other = pki.leaf("other.example.com")
            cls.record = L.path("upstream.jsonl")
            cls.mock = L.spawn(cls.up, lab.PYTHON, lab.MOCK, "--listen", "198.18.0.2:443",
                               "--listen", "[fd00:18::2]:443", "--cert", ":".join(good),
                               "--sni", "other.example.com=" + ":".join(other), "--record", cls.record,
                               log="mock.log")
            lab.wait_port(cls.up, "198.18.0.2", 443)

            # Bad upstreams on other ports, one defect each.
            cls.bad_record = L.path("bad.jsonl")
            bad = {
                "expired": pki.leaf("api.anthropic.com", start="20200101000000Z", end="20210101000000Z"),
                "wronghost": pki.leaf("api.example.org"),
                "selfsigned": pki.self_signed("api.anthropic.com"),
            }
            untrusted = lab.Pki(L.dir, "untrusted").leaf("api.anthropic.com")
            bad["untrusted"] = untrusted
            cls.bad_ports = {}
            for i, (kind, cert) in enumerate(sorted(bad.items())):
                port = 8440 + i
                cls.bad_ports[kind] = port
                L.spawn(cls.up, lab.PYTHON, lab.MOCK, "--listen", f"198.18.0.2:{port}", "--cert", ":".join(cert),
                        "--record", cls.bad_record, log=f"mock-{kind}.log")
            for port in cls.bad_ports.values():
                lab.wait_port(cls.up, "198.18.0.2", port)

            cls.ca = lab.make_lab_ca(L, owner_uid=lab.VEIL_UID)
            cls.config = L.path("veil.yaml")
            lab.write_config(cls.config, [("sidecar", "redirect", "[::]:15001")], cls.ca, pki.ca,
                             extra="timeouts: {request_headers: 2s, idle: 5s}\n")
            # Ports 443 and the bad ports go through veild, except veild's own traffic.
            ports = "443,8440:8450"
            for ipt in ("iptables", "ip6tables"):
                cls.app.sh(f"{ipt} -t nat -N VEIL_OUTPUT && "
                           f"{ipt} -t nat -A VEIL_OUTPUT -m owner --uid-owner {lab.VEIL_UID} -j RETURN && "
                           f"{ipt} -t nat -A VEIL_OUTPUT -o lo -j RETURN && "
                           f"{ipt} -t nat -A VEIL_OUTPUT -p tcp -m multiport --dports {ports} -j REDIRECT --to-ports 15001 && "
                           f"{ipt} -t nat -A OUTPUT -p tcp -j VEIL_OUTPUT")
            cls.veild = L.spawn(cls.app, lab.VEILD, "--config", cls.config, "--workers", "2", log="veild.log",
                                uid=lab.VEIL_UID)
            lab.wait_port(cls.app, "127.0.0.1", 15001, proc=cls.veild)
        except BaseException:
            cls.lab.close()
            raise

    @classmethod
    def tearDownClass(cls):
        try:
            rc = cls.lab.stop(cls.veild)
            cls.veild_exit = rc
        finally:
            cls.lab.close()

    # -- helpers

    def curl(self, *args, host="198.18.0.2", port=443, name="api.anthropic.com"):
        return self.app.exec("curl", "-sS", "--max-time", "20", "--cacert", f"{self.ca}/ca.pem",
                             "--resolve", f"{name}:{port}:{host}", *args, check=False)

    def post(self, body, stream=False, host="198.18.0.2"):
        url = f"https://api.anthropic.com/v1/messages" if ":" not in host else "https://api.anthropic.com/v1/messages"
        args = ["-X", "POST", "-H", "content-type: application/json", "--data-binary", body, url]
        if stream:
            args = ["-N"] + args
        return self.curl(*args, host=host)

    def last_record(self):
        recs = lab.records(self.record)
        self.assertTrue(recs, "the upstream recorded no request")
        return recs[-1]

    def python(self, code):
        return self.app.exec(lab.PYTHON, "-c", code, check=False)

    # -- tests

    def test_masked_request_reaches_upstream_without_identifiers(self):
        r = self.post(request_body())
        self.assertEqual(r.returncode, 0, r.stderr)
        rec = self.last_record()
        self.assertEqual(rec["path"], "/v1/messages")
        for original, token_type in PLANTED.items():
            self.assertNotIn(original, rec["body"])
            self.assertIn(token_type + "_001", rec["body"])
        json.loads(rec["body"])

    def test_json_response_and_tool_use_input_are_unmasked(self):
        r = self.post(request_body())
        self.assertEqual(r.returncode, 0, r.stderr)
        resp = json.loads(r.stdout)
        text = resp["content"][0]["text"]
        for original in PLANTED:
            self.assertIn(original, text)
        self.assertEqual(resp["content"][1]["input"]["instance_id"], "i-0123456789abcdef0")
        self.assertNotIn("EC2_001", r.stdout)

    def test_sse_stream_with_tokens_split_across_events_is_unmasked(self):
        r = self.post(request_body(stream=True), stream=True)
        self.assertEqual(r.returncode, 0, r.stderr)
        text, partial = "", ""
        for line in r.stdout.splitlines():
            if not line.startswith("data: "):
                continue
            ev = json.loads(line[6:])
            if ev.get("type") == "content_block_delta":
                d = ev["delta"]
                text += d.get("text", "")
                partial += d.get("partial_json", "")
        for original in PLANTED:
            self.assertIn(original, text)
        self.assertEqual(json.loads(partial)["instance_id"], "i-0123456789abcdef0")
        self.assertNotIn("EC2_001", r.stdout)

    def test_ipv6_client_is_intercepted_and_masked(self):
        r = self.post(request_body(), host="fd00:18::2")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("i-0123456789abcdef0", json.loads(r.stdout)["content"][0]["text"])
        self.assertNotIn("i-0123456789abcdef0", self.last_record()["body"])

    def test_keep_alive_carries_several_requests_on_one_connection(self):
        code = f"""
import http.client, ssl, json
ctx = ssl.create_default_context(cafile="{self.ca}/ca.pem")
c = http.client.HTTPSConnection("198.18.0.2", 443, context=ctx, timeout=20)
c._tunnel_host = None
c.host = "198.18.0.2"
import socket
sock = socket.create_connection(("198.18.0.2", 443), timeout=20)
c.sock = ctx.wrap_socket(sock, server_hostname="api.anthropic.com")
out = []
for i in range(3):
    body = json.dumps({{"model": "m", "max_tokens": 1, "messages": [{{"role": "user", "content": "host i-0123456789abcdef{{}}".format(i)}}]}})
    c.request("POST", "/v1/messages", body, {{"Host": "api.anthropic.com", "Content-Type": "application/json"}})
    r = c.getresponse()
    out.append(json.loads(r.read())["content"][0]["text"])
c.request("GET", "/", headers={{"Host": "api.anthropic.com"}})
out.append(c.getresponse().read().decode())
print(json.dumps(out))
"""
        r = self.python(code)
        self.assertEqual(r.returncode, 0, r.stderr)
        out = json.loads(r.stdout)
        for i in range(3):
            self.assertIn(f"i-0123456789abcdef{i}", out[i])
        self.assertIn("hello from the mock", out[3])

    def test_non_target_sni_is_spliced_through_untouched(self):
        # If veild intercepted this, the certificate would chain to the lab
        # CA and verification against the mock's CA would fail.
        r = self.app.exec("curl", "-sS", "--max-time", "10", "--cacert", self.pki.ca, "--resolve",
                          "other.example.com:443:198.18.0.2", "https://other.example.com/", check=False)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("hello from the mock", r.stdout)
        r2 = self.app.exec("curl", "-sS", "--max-time", "10", "--cacert", f"{self.ca}/ca.pem", "--resolve",
                           "other.example.com:443:198.18.0.2", "https://other.example.com/", check=False)
        self.assertNotEqual(r2.returncode, 0)

    def test_bad_upstream_certificates_are_refused_and_nothing_is_sent(self):
        before = len(lab.records(self.bad_record))
        for kind, port in sorted(self.bad_ports.items()):
            with self.subTest(kind=kind):
                r = self.curl("-X", "POST", "--data-binary", request_body(),
                              f"https://api.anthropic.com:{port}/v1/messages", port=port)
                # 35: the TLS handshake failed — the client got an alert, not
                # a certificate (curl exits 60 for an untrusted certificate).
                self.assertEqual(r.returncode, 35, f"{kind}: {r.stderr} {r.stdout}")
        self.assertEqual(len(lab.records(self.bad_record)), before, "a request reached a bad upstream")
        with open(self.lab.path("veild.log")) as f:
            log = f.read()
        for reason in ("reason=expired", "reason=self-signed", 'reason="hostname mismatch"',
                       'reason="unknown issuer'):
            self.assertIn(reason, log)

    def test_content_length_with_transfer_encoding_gets_400_and_reaches_nobody(self):
        before = len(lab.records(self.record))
        raw = ("POST /v1/messages HTTP/1.1\r\nHost: api.anthropic.com\r\nContent-Type: application/json\r\n"
               "Content-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n")
        code = f"""
import socket, ssl
ctx = ssl.create_default_context(cafile="{self.ca}/ca.pem")
s = ctx.wrap_socket(socket.create_connection(("198.18.0.2", 443), timeout=10), server_hostname="api.anthropic.com")
s.sendall({raw!r}.encode())
data = b""
while True:
    b = s.recv(65536)
    if not b: break
    data += b
print(data.decode())
"""
        r = self.python(code)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertTrue(r.stdout.startswith("HTTP/1.1 400"), r.stdout)
        self.assertIn('"type":"error"', r.stdout.replace(" ", ""))
        self.assertEqual(len(lab.records(self.record)), before)

    def test_oversized_masked_body_gets_413(self):
        before = len(lab.records(self.record))
        big = request_body(extra="x" * (2 << 20))
        path = self.lab.path("big.json")
        with open(path, "w") as f:
            f.write(big)
        r = self.curl("-X", "POST", "-H", "content-type: application/json", "--data-binary", "@" + path,
                      "-o", "-", "-w", "\n%{http_code}", "https://api.anthropic.com/v1/messages")
        self.assertTrue(r.stdout.strip().endswith("413"), r.stdout[-300:] + r.stderr)
        self.assertEqual(len(lab.records(self.record)), before)

    def test_invalid_json_on_a_masked_route_is_blocked_with_a_reason(self):
        before = len(lab.records(self.record))
        r = self.curl("-X", "POST", "-H", "content-type: application/json", "--data-binary",
                      '{"messages": "i-0123456789abcdef0"', "-w", "\n%{http_code}",
                      "https://api.anthropic.com/v1/messages")
        body, status = r.stdout.rsplit("\n", 1)
        self.assertEqual(status, "400")
        err = json.loads(body)
        self.assertEqual(err["type"], "error")
        self.assertIn("invalid_json", err["error"]["message"])
        self.assertNotIn("i-0123456789abcdef0", body)
        self.assertEqual(len(lab.records(self.record)), before)

    def test_log_lines_never_carry_original_values(self):
        self.post(request_body())
        with open(self.lab.path("veild.log")) as f:
            log = f.read()
        self.assertIn("event=request", log)
        for original in PLANTED:
            self.assertNotIn(original, log)


if __name__ == "__main__":
    unittest.main(verbosity=2)
