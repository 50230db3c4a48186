"""TLS at the client-facing listener and toward the upstream (issue 5).

- What is not a TLS ClientHello for a target (plain HTTP, random bytes, a
  malformed hello, no SNI, an IP-literal, over-long or non-LDH SNI, a
  non-target SNI) is spliced to the original destination or reset, as
  `no_sni` / `passthrough` say — both settings tried. "Spliced" is proven by
  the certificate the client gets: the real server's, never a forged one.
- ALPN h2 only, close_notify or RST right after the handshake.
- The forged leaf, read with `openssl x509`: CA:FALSE, serverAuth only, SAN
  exactly the validated name, P-256, notBefore a little in the past,
  validity within the CA's and at most a year.
- Upstream certificates that fail (expired, not yet valid, wrong host,
  self-signed, untrusted root, missing intermediate): the client gets only
  a handshake_failure alert — no certificate at all, so none chaining to
  the lab CA — and the upstream records no request.
- testssl.sh (Debian) against the listener: no HIGH or CRITICAL finding but
  the one that is by design (see test_testssl).
"""

import datetime
import json
import os
import socket
import ssl
import subprocess
import time
import unittest

import adv
import lab

ALERT = b"\x15\x03\x03\x00\x02\x02\x28"  # fatal handshake_failure: all veild sends on a failed upstream check
BAD = {  # up-namespace address → defect
    "198.18.2.10": "expired",
    "198.18.2.11": "not_yet_valid",
    "198.18.2.12": "wrong_host",
    "198.18.2.13": "self_signed",
    "198.18.2.14": "untrusted_root",
    "198.18.2.15": "missing_intermediate",
    "198.18.2.16": "intermediate_sent",  # the control: the same leaf with its chain is accepted
}
REASONS = {"expired": "reason=expired", "not_yet_valid": 'reason="not yet valid"',
           "wrong_host": 'reason="hostname mismatch"', "self_signed": "reason=self-signed",
           "untrusted_root": 'reason="unknown issuer', "missing_intermediate": 'reason="unknown issuer'}


def intermediate_chain(pki, name):
    """A leaf for `name` signed by an intermediate under pki's root: (leaf, key, intermediate)."""
    d = pki.dir
    ik, ic, icsr = (os.path.join(d, f"int.{x}") for x in ("key", "pem", "csr"))
    ext = os.path.join(d, "int.ext")
    with open(ext, "w") as f:
        f.write("basicConstraints=critical,CA:TRUE,pathlen:0\nkeyUsage=critical,keyCertSign,cRLSign\n"
                "[leaf]\nbasicConstraints=critical,CA:FALSE\nextendedKeyUsage=serverAuth\n"
                f"subjectAltName=DNS:{name}\n")
    lab.openssl("req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", ik,
                "-out", icsr, "-subj", "/CN=mock intermediate")
    lab.openssl("x509", "-req", "-in", icsr, "-CA", pki.ca, "-CAkey", pki.ca_key, "-CAcreateserial", "-days", "10",
                "-extfile", ext, "-out", ic)
    lk, lc, lcsr = (os.path.join(d, f"ileaf.{x}") for x in ("key", "pem", "csr"))
    lab.openssl("req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", lk,
                "-out", lcsr, "-subj", f"/CN={name}")
    lab.openssl("x509", "-req", "-in", lcsr, "-CA", ic, "-CAkey", ik, "-CAcreateserial", "-days", "5",
                "-extfile", ext, "-extensions", "leaf", "-out", lc)
    return lc, lk, ic


class Tls(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.A = A = adv.Appliance(extra_up=tuple(BAD))
        try:
            pki, L = A.pki, A.lab

            def keep(kind, pair):
                # Pki names files after the host: copies keep each defect's own.
                out = []
                for path, ext in zip(pair, ("pem", "key")):
                    dst = L.path(f"{kind}.{ext}")
                    with open(path, "rb") as src, open(dst, "wb") as f:
                        f.write(src.read())
                    out.append(dst)
                return tuple(out)

            certs = {
                "expired": keep("expired", pki.leaf(adv.HOST, start="20200101000000Z", end="20210101000000Z")),
                "not_yet_valid": keep("nyv", pki.leaf(adv.HOST, start="20990101000000Z", end="20991231000000Z")),
                "wrong_host": pki.leaf("api.example.org"),
                "self_signed": pki.self_signed(adv.HOST),
                "untrusted_root": lab.Pki(L.dir, "untrusted").leaf(adv.HOST),
            }
            leaf, key, inter = intermediate_chain(pki, adv.HOST)
            certs["missing_intermediate"] = (leaf, key)
            chain = L.path("chain.pem")
            with open(chain, "w") as f:
                f.write(open(leaf).read() + open(inter).read())
            certs["intermediate_sent"] = (chain, key)
            cls.bad_record = L.path("bad.jsonl")
            for addr, kind in BAD.items():
                L.spawn(A.up, lab.PYTHON, lab.MOCK, "--listen", f"{addr}:443", "--cert", ":".join(certs[kind]),
                        "--record", cls.bad_record, log=f"mock-{kind}.log")
            for addr in BAD:
                lab.wait_port(A.up, addr, 443)
            cls.policy = None
            cls.use("splice")
        except BaseException:
            A.close()
            raise

    @classmethod
    def tearDownClass(cls):
        cls.A.close()

    @classmethod
    def use(cls, policy):
        """veild with passthrough and no_sni both `policy` (splice | reject)."""
        if cls.policy != policy:
            cls.A.stop()
            cls.A.start(top={"passthrough": policy, "no_sni": policy})
            cls.policy = policy

    def scripted_conns(self, since):
        return [e for e in self.A.script_events()[since:] if e["event"] == "open"]

    def send_case(self, payload):
        since = len(self.A.script_events())
        data, end = adv.raw_exchange(self.A.cli, adv.SCRIPT4, 443, payload)
        time.sleep(0.1)
        return data, end, self.scripted_conns(since)

    def cases(self):
        """name → (bytes sent to the scripted upstream's address, the reason
        a reject logs, what the client must get when spliced, the SNI the
        passthrough line names)."""
        hello = bytearray(adv.client_hello(b"api.anthropic.com"))
        hello[9:11] = b"\x09\x09"  # legacy_version nonsense and a length that no longer adds up
        hello[44] = 0xff           # session id length past the end
        long_name = (("a" * 62 + ".") * 4)[:250] + ".com"  # 254 bytes: more than a DNS name can have
        cert, refused = self.assert_upstream_certificate, self.assert_upstream_refused_it
        return {
            "plain_http": (adv.request("GET", "/"), "not TLS", refused, "-"),
            "random_bytes": (bytes(range(7, 250)) * 3, "not TLS", refused, "-"),
            "malformed_hello": (bytes(hello), "malformed ClientHello", refused, "-"),
            "no_sni": (adv.client_hello(None), "absent", cert, "-"),
            "ip_literal_sni": (adv.client_hello(adv.SCRIPT4.encode()), "IP literal", cert, "-"),
            "over_long_sni": (adv.client_hello(long_name.encode()), "invalid", cert, "-"),
            "underscore_sni": (adv.client_hello(b"api_anthropic.com"), "invalid", cert, "-"),
            "empty_label_sni": (adv.client_hello(b"api..anthropic.com"), "invalid", cert, "-"),
            # Never read as the target up to the NUL; spliced, the real
            # server's OpenSSL refuses the name itself (unrecognized_name).
            "nul_in_sni": (adv.client_hello(b"api.anthropic.com\x00.evil"), "invalid", refused, "-"),
            # passthrough (not no_sni) decides this one
            "non_target_sni": (adv.client_hello(b"other.example.com"), "not_a_target", cert, "other.example.com"),
        }

    def test_what_is_not_a_target_hello_is_reset_under_reject(self):
        self.use("reject")
        for name, (payload, reason, _, _) in self.cases().items():
            with self.subTest(case=name):
                data, end, conns = self.send_case(payload)
                self.assertEqual((data, end), (b"", "reset"))
                self.assertEqual(conns, [], "a rejected connection reached upstream")
                self.A.wait_event("connection_rejected", where=lambda e, r=reason: e.get("reason") == r)

    def test_what_is_not_a_target_hello_is_spliced_under_splice(self):
        self.use("splice")
        for name, (payload, _, check, sni) in self.cases().items():
            with self.subTest(case=name):
                data, end, conns = self.send_case(payload)
                self.assertEqual(len(conns), 1, "the bytes were not spliced upstream")
                check(data, end)
                self.A.wait_event("passthrough", where=lambda e, n=sni: e.get("sni") == n)

    def assert_upstream_certificate(self, data, end):
        certs = adv.certificates_in(data)
        self.assertEqual(end, "answered", data[:40])
        issuer = adv.x509_field(certs[0], "-issuer", "-nameopt", "RFC2253")
        self.assertEqual(issuer, "issuer=CN=mock test root", "the client did not get the real server's certificate")

    def assert_upstream_refused_it(self, data, end):
        # What came back is the real server's reaction to garbage: a TLS
        # alert record or a close — never anything from veild (an HTTP
        # answer, a forged certificate).
        self.assertNotIn(b"HTTP/1.1", data)
        self.assertEqual(adv.certificates_in(data), [])
        self.assertTrue(data == b"" or data[0] == 0x15, data[:20])

    def test_the_same_hand_made_hello_for_the_target_is_intercepted(self):
        # The control for the cases above: with the target's name, veild
        # answers itself with a leaf from the lab CA.
        self.use("splice")
        data, end = adv.raw_exchange(self.A.cli, adv.SCRIPT4, 443, adv.client_hello(b"api.anthropic.com"))
        certs = adv.certificates_in(data)
        self.assertEqual(end, "answered")
        issuer = adv.x509_field(certs[0], "-issuer", "-nameopt", "RFC2253")
        subject_ca = adv.x509_field(open(f"{self.A.ca}/ca.pem", "rb").read(), "-subject", "-nameopt", "RFC2253",
                                    pem=True)
        self.assertEqual(issuer.split("=", 1)[1], subject_ca.split("=", 1)[1])

    # ------------------------------------------------------------ a real TLS client

    def test_alpn_h2_only_gets_no_alpn_and_an_http2_preface_gets_505(self):
        self.use("splice")
        ctx = ssl.create_default_context(cafile=f"{self.A.ca}/ca.pem")
        ctx.set_alpn_protocols(["h2"])
        c = self.A.connect(ctx=ctx)
        self.assertIsNone(c.obj.selected_alpn_protocol())
        c.send(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")
        rs = adv.parse_responses(c.read(timeout=5), eof=True)
        self.assertEqual([(r.status, r.error_type()) for r in rs], [(505, "veil_version_not_supported")])
        self.assertEqual(c.end, "close_notify")
        ctx.set_alpn_protocols(["h2", "http/1.1"])
        c = self.A.connect(ctx=ctx)
        self.assertEqual(c.obj.selected_alpn_protocol(), "http/1.1")
        c.close()

    def test_close_notify_or_rst_right_after_the_handshake(self):
        self.use("splice")
        for how in ("close_notify", "rst"):
            with self.subTest(how=how):
                since = len(self.A.script_events())
                c = self.A.connect(adv.SCRIPT4)
                if how == "close_notify":
                    c.close_notify()
                    c.read(timeout=3)
                    self.assertEqual(c.end, "close_notify")  # veild answers with its own
                else:
                    adv.rst(c.sock)
                deadline = time.time() + 5
                while not any(e["event"] == "closed" for e in self.A.script_events()[since:]):
                    self.assertLess(time.time(), deadline, "the upstream connection was left open")
                    time.sleep(0.05)
                events = [e["event"] for e in self.A.script_events()[since:]]
                self.assertEqual(events, ["open", "closed"])  # connected first (verification), then no request
        # No session left behind (spliced ones of other cases end at their
        # idle timeout, 5 s).
        deadline = time.time() + 8
        while self.A.metrics()["active"] != 0:
            self.assertLess(time.time(), deadline, "sessions stay open")
            time.sleep(0.5)

    def test_forged_leaf_properties(self):
        self.use("splice")
        ca_pem = open(f"{self.A.ca}/ca.pem", "rb").read()
        ca_end = datetime.datetime.strptime(adv.x509_field(ca_pem, "-enddate", pem=True).split("=", 1)[1],
                                            "%b %d %H:%M:%S %Y %Z")
        ca_text = subprocess.run(["openssl", "x509", "-noout", "-text"], input=ca_pem, capture_output=True).stdout.decode()
        self.assertRegex(ca_text, r"X509v3 Name Constraints: critical\s+Permitted:\s+DNS:anthropic.com")
        for sni in ("api.anthropic.com", "API.Anthropic.COM"):
            with self.subTest(sni=sni):
                ctx = ssl.create_default_context(cafile=f"{self.A.ca}/ca.pem")
                ctx.check_hostname = sni.islower()  # Python compares case-sensitively
                c = self.A.connect(sni=sni, ctx=ctx)
                der = c.peer_der()
                c.close()
                text = adv.x509_text(der)
                self.assertRegex(text, r"X509v3 Basic Constraints: critical\s+CA:FALSE\n")
                self.assertRegex(text, r"X509v3 Extended Key Usage: \s*\n\s+TLS Web Server Authentication\n")
                self.assertRegex(text, r"X509v3 Key Usage: critical\s+Digital Signature\n")
                self.assertRegex(text, r"X509v3 Subject Alternative Name: \s*\n\s+DNS:api\.anthropic\.com\n")
                self.assertIn("Public Key Algorithm: id-ecPublicKey", text)
                self.assertIn("ASN1 OID: prime256v1", text)
                dates = dict(x.split("=", 1) for x in adv.x509_field(der, "-dates").splitlines())
                nb = datetime.datetime.strptime(dates["notBefore"], "%b %d %H:%M:%S %Y %Z")
                na = datetime.datetime.strptime(dates["notAfter"], "%b %d %H:%M:%S %Y %Z")
                now = datetime.datetime.utcnow()
                self.assertLessEqual(nb, now)
                self.assertGreater(nb, now - datetime.timedelta(minutes=10))  # backdated a little, for clock skew
                self.assertLessEqual(na - nb, datetime.timedelta(days=30, minutes=10))  # ca.leaf_validity 30d
                self.assertLessEqual(na - nb, datetime.timedelta(days=365))
                self.assertLessEqual(na, ca_end)
                pem = ssl.DER_cert_to_PEM_cert(der).encode()
                path = self.A.lab.path("leaf.pem")
                open(path, "wb").write(pem)
                r = lab.run("openssl", "verify", "-x509_strict", "-purpose", "sslserver", "-verify_hostname",
                            "api.anthropic.com", "-CAfile", f"{self.A.ca}/ca.pem", path, check=False)
                self.assertEqual(r.returncode, 0, r.stdout + r.stderr)

    # ------------------------------------------------------------ upstream certificates

    def test_bad_upstream_certificates_yield_only_an_alert_and_nothing_is_sent(self):
        self.use("splice")
        body = adv.json_post({"model": "m", "messages": [{"role": "user", "content": "i-0123456789abcdef0"}]})
        for addr, kind in BAD.items():
            with self.subTest(upstream=kind):
                before = len(lab.records(self.bad_record))
                s = adv.tcp(self.A.cli, addr, 443)
                c = adv.TlsClient(s, self.A.ctx, adv.HOST)
                if kind == "intermediate_sent":
                    c.handshake()
                    c.send(body)
                    rs = adv.parse_responses(c.read(until=adv.complete_responses(1)))
                    self.assertEqual(rs[0].status, 200)
                    self.assertEqual(len(lab.records(self.bad_record)), before + 1)
                    continue
                err = adv.quiet(c.handshake)
                self.assertIsInstance(err, adv.HandshakeFailed)
                self.assertEqual(err.reason, "SSLV3_ALERT_HANDSHAKE_FAILURE")
                # Every byte the client got: the alert. No ServerHello, so no
                # certificate of any kind — none that chains to the lab CA.
                self.assertEqual(err.raw, ALERT)
                self.assertEqual(len(lab.records(self.bad_record)), before, "a request reached a bad upstream")
                self.A.wait_event("upstream_tls_failed", where=lambda e, a=addr: e.get("dst") == f"{a}:443")
        log = self.A.log_text()
        for kind, reason in REASONS.items():
            self.assertIn(reason, log, kind)

    # ------------------------------------------------------------ testssl.sh

    def test_testssl(self):
        """Protocols, cipher categories, server preference, forward secrecy,
        server defaults (certificate) and the vulnerability checks, against
        the listener from the client namespace (--ip: no DNS, nothing but
        the lab). Accepted, by design, and nothing else at HIGH/CRITICAL:
        cert_revocation (a lab CA's short-lived leaves carry no CRL or OCSP
        URI: revoking is removing the CA from the application's trust).
        Expiry thresholds follow veild's reforging: a leaf is replaced after
        3/4 of ca.leaf_validity (30d), so one served has at least 7 days."""
        self.use("splice")
        out = self.A.lab.path("testssl.json")
        started = time.time()
        r = self.A.cli.exec("env", "DAYS2WARN1=14", "DAYS2WARN2=7", "timeout", "240", "testssl", "--quiet",
                            "--warnings", "off", "--color", "0", "--nodns", "none", "--ip", adv.API4,
                            "--add-ca", f"{self.A.ca}/ca.pem", "--connect-timeout", "5", "--openssl-timeout", "5",
                            "--jsonfile", out, "-p", "-s", "-f", "-P", "-S", "-U", f"{adv.HOST}:443", check=False)
        took = time.time() - started
        self.assertNotEqual(r.returncode, 124, "testssl.sh ran out of time")
        findings = json.load(open(out))
        bad = [f for f in findings if f["severity"] in ("HIGH", "CRITICAL")]
        accepted = [f for f in bad if f["id"] == "cert_revocation" and f["finding"] == "Neither CRL nor OCSP URI provided"]
        counts = {}
        for f in findings:
            counts[f["severity"]] = counts.get(f["severity"], 0) + 1
        adv.say(f"testssl.sh: {len(findings)} findings in {took:.0f}s: {counts}")
        self.assertEqual([f"{f['id']}: {f['finding']}" for f in bad if f not in accepted], [])
        ids = {f["id"] for f in findings}
        for expected in ("SSLv2", "SSLv3", "TLS1", "TLS1_1", "TLS1_2", "TLS1_3", "heartbleed", "ROBOT",
                         "cert_chain_of_trust", "cipher_order"):
            self.assertIn(expected, ids, "testssl.sh did not run that check")
        by_id = {f["id"]: f for f in findings}
        self.assertEqual(by_id["cert_chain_of_trust"]["severity"], "OK")  # the lab CA, given with --add-ca
        for old in ("SSLv2", "SSLv3", "TLS1", "TLS1_1"):
            self.assertIn("not offered", by_id[old]["finding"])


if __name__ == "__main__":
    unittest.main(verbosity=2)
