"""Faults (issue 5): the upstream breaks mid-response, veild is killed while
its rules are installed, veild is stopped with requests in flight.

- An upstream that resets or closes in the middle of a body (Content-Length,
  chunked, close-delimited, an SSE stream being unmasked) gives the client
  an abnormal end — an RST, never a clean end of a truncated body.
- SIGKILL with the veil-iptables rules installed (gateway and sidecar
  styles): connections to captured destinations are refused, and none goes
  around the appliance (packet counters on the path a bypass would take);
  a restart serves again.
- SIGTERM: a slow response and a slow upload in flight finish; new
  connections are refused at once, not left hanging; veild exits 0.
"""

import json
import os
import signal
import subprocess
import threading
import time
import unittest

import adv
import lab

TOKENS_BODY = {"model": "m", "max_tokens": 8, "stream": True,
               "messages": [{"role": "user", "content": "i-0123456789abcdef0 in vpc-0a1b2c3d"}]}


class UpstreamFaults(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.A = adv.Appliance()
        try:
            cls.A.start()
        except BaseException:
            cls.A.close()
            raise

    @classmethod
    def tearDownClass(cls):
        cls.A.close()

    def run_script(self, script, masked=False):
        if masked:
            raw = adv.json_post(TOKENS_BODY, headers={"x-script": script})
        else:
            raw = adv.request("GET", "/" + script)
        rs, c = self.A.exchange(raw, dst=adv.SCRIPT4, wait_end=5)
        return rs, c

    def test_a_body_cut_by_the_upstream_is_an_abnormal_end_for_the_client(self):
        for script in ("reset-mid-length", "fin-mid-length", "notify-mid-length",
                       "reset-mid-chunked", "fin-mid-chunked", "notify-mid-chunked"):
            with self.subTest(script=script):
                rs, c = self.run_script(script)
                self.assertEqual(len(rs), 1, rs)
                self.assertEqual(rs[0].status, 200)  # the head had been relayed
                self.assertEqual(len(rs[0].body), 100)  # and the 100 bytes that came
                self.assertFalse(rs[0].complete, "a truncated body ended cleanly")
                self.assertEqual(c.end, "reset")

    def test_a_close_delimited_body_is_complete_only_with_close_notify(self):
        rs, c = self.run_script("until-close-notify")
        self.assertEqual([(r.status, r.body, r.complete) for r in rs], [(200, b"y" * 100, True)])
        self.assertEqual(rs[0].header("transfer-encoding"), "chunked")  # re-framed: the end is explicit
        self.assertEqual(c.end, "close_notify")
        # A FIN without close_notify may be a truncation (an on-path FIN, a
        # crash): it must not become the clean end of a chunked body.
        rs, c = self.run_script("until-close-fin")
        self.assertEqual(len(rs), 1, rs)
        self.assertFalse(rs[0].complete, f"a truncated close-delimited body was relayed as complete: {rs}")
        self.assertEqual(c.end, "reset")

    def test_an_sse_stream_cut_by_the_upstream_is_an_abnormal_end_and_never_shows_tokens(self):
        rs, c = self.run_script("sse-ok", masked=True)  # the control: the same stream, ended properly
        self.assertTrue(rs[0].complete)
        self.assertIn(b"message_stop", rs[0].body)
        self.assertIn(b"i-0123456789abcdef0", rs[0].body)
        c.close()
        for script in ("reset-mid-sse", "fin-mid-sse", "notify-mid-sse"):
            with self.subTest(script=script):
                rs, c = self.run_script(script, masked=True)
                self.assertEqual(len(rs), 1, rs)
                r = rs[0]
                self.assertEqual(r.status, 200)
                self.assertFalse(r.complete)
                self.assertEqual(c.end, "reset")
                self.assertNotIn(b"message_stop", r.body)
                self.assertEqual(r.body.count(b"i-0123456789abcdef0"), 5, r.body)  # the 5 events, restored
                self.assertNotIn(b"EC2_", r.body)


class DrainOnSigterm(unittest.TestCase):
    def setUp(self):
        self.A = adv.Appliance(scripted=False)

    def tearDown(self):
        self.A.close()

    def test_sigterm_finishes_requests_in_flight_while_a_new_instance_takes_new_connections(self):
        # A rolling restart: the new veild listens beside the old one
        # (SO_REUSEPORT); SIGTERM makes the old one stop listening at once,
        # so no new connection waits in its accept queue while it drains.
        A = self.A
        old = A.start(timeouts={"body_idle": "5s", "response": "10s"})
        old_log = A.log
        stream = A.connect()
        stream.send(adv.json_post(dict(TOKENS_BODY, mock_delay=3)))  # about 3 s of SSE
        upload = A.connect()
        body = json.dumps({"model": "m", "max_tokens": 1,
                           "messages": [{"role": "user", "content": "ami-0a1b2c3d"}]}).encode()
        raw = adv.request("POST", "/v1/messages", body, {"Content-Type": "application/json"})
        upload.send(raw[:-10])  # half an upload in flight
        time.sleep(0.3)
        A.start(timeouts={"body_idle": "5s", "response": "10s"})
        new_log = A.log
        old.send_signal(signal.SIGTERM)
        A.log = old_log
        A.wait_event("draining")
        A.log = new_log
        time.sleep(0.2)
        for i in range(8):
            with self.subTest(connection=i):
                ok = adv.quiet(A.healthy)
                self.assertIs(ok, True, f"a new connection during the drain was not served: {ok!r}")
        upload.send(raw[-10:])
        up = adv.parse_responses(upload.read(timeout=10, until=adv.complete_responses(1)))
        self.assertEqual(up[0].status, 200)
        self.assertIn(b"ami-0a1b2c3d", up[0].body)
        rs = adv.parse_responses(stream.read(timeout=15, until=adv.complete_responses(1)))
        self.assertTrue(rs[0].complete, rs)
        self.assertIn(b"message_stop", rs[0].body)
        self.assertIn(b"i-0123456789abcdef0", rs[0].body)
        for c in (stream, upload):  # closed by the old veild once their exchange was done
            c.read(timeout=5)
            self.assertEqual(c.end, "close_notify")
        self.assertEqual(old.wait(timeout=15), 0)
        self.assertEqual(len(A.events("request")), 8)  # the new one served the new connections
        A.log = old_log
        self.assertEqual(len(A.events("request")), 2)  # the old one only what was in flight
        self.assertEqual(len(A.events("stopped")), 1)


class KillWithRulesInstalled(unittest.TestCase):
    """SIGKILL leaves the rules in place: captured traffic must fail closed."""

    def curl(self, ns):
        """curl with certificate checks off: anything that answered would do."""
        return ns.exec("curl", "-sS", "--connect-timeout", "2", "--max-time", "5", "-k", "--resolve",
                       f"{adv.HOST}:443:{adv.API4}", f"https://{adv.HOST}/", check=False)

    def assert_fails_closed(self, ns, veil_ns, port, count_bypass, records_before, record, expect):
        # Right after the kill the kernel may still be tearing down the dead
        # process's io_uring, whose accept holds the listening socket for a
        # moment: such a connection is accepted and reset (curl 35).
        r = self.curl(ns)
        self.assertIn(r.returncode, (expect[0], 35), r.stderr)
        if r.returncode == 35:
            self.assertIn("Connection reset by peer", r.stderr)
        deadline = time.time() + 10
        while veil_ns.sh(f"ss -Hltn sport = :{port}").stdout.strip():
            self.assertLess(time.time(), deadline, "the dead veild's listening socket stays")
            time.sleep(0.05)
        for attempt in range(3):
            r = self.curl(ns)
            self.assertEqual((r.returncode, expect[1] in r.stderr), (expect[0], True),
                             f"curl with veild dead: {r.returncode} {r.stderr}")
        self.assertEqual(count_bypass(), 0, "a connection went around the appliance")
        self.assertEqual(len(lab.records(record)), records_before)

    def test_gateway(self):
        A = adv.Appliance(scripted=False)
        try:
            A.start()
            # A bypass would arrive in up with the client's own address
            # (veild connects from the gateway's).
            A.up.sh(f"iptables -I INPUT -s {adv.CLI4} -p tcp --dport 443 --syn -j ACCEPT")

            def bypass():
                out = A.up.sh("iptables -nvxL INPUT").stdout
                return int(next(line.split()[0] for line in out.splitlines() if adv.CLI4 in line))

            self.assertTrue(A.healthy())
            inflight = A.cli.popen("curl", "-sS", "-N", "--max-time", "20", "--cacert", f"{A.ca}/ca.pem", "--resolve",
                                   f"{adv.HOST}:443:{adv.API4}", "-H", "content-type: application/json",
                                   "--data-binary", json.dumps(dict(TOKENS_BODY, mock_delay=3)),
                                   f"https://{adv.HOST}/v1/messages", stdout=subprocess.PIPE, stderr=subprocess.PIPE)
            time.sleep(0.8)
            A.veild.kill()
            A.veild.wait()
            A.veild = None
            out, err = inflight.communicate(timeout=20)
            self.assertNotEqual(inflight.returncode, 0, "a stream cut by the kill ended as a success")
            self.assertNotIn(b"message_stop", out)
            r = lab.run(lab.VEIL_IPTABLES, "verify", "--config", A.config, "--netns", A.gw.name, check=False)
            self.assertEqual(r.returncode, 0, "the rules are not what the kill left: " + r.stdout + r.stderr)
            # TPROXY drops a SYN it finds no socket for: the client's
            # connect times out (it cannot be refused from mangle PREROUTING).
            self.assert_fails_closed(A.cli, A.gw, adv.LISTEN_PORT, bypass, len(A.records()), A.record,
                                     (28, "Timeout was reached"))
            A.start()
            self.assertTrue(A.healthy(), "no service after the restart")
            self.assertEqual(bypass(), 0)
        finally:
            A.close()

    def test_sidecar(self):
        L = lab.Lab()
        try:
            app, up = L.netns("app"), L.netns("up")
            L.veth(app, "eth0", up, "eth0")
            app.sh(f"ip addr add 198.18.1.2/24 dev eth0 && ip route add {adv.API4}/32 dev eth0")
            up.sh(f"ip addr add 198.18.1.1/24 dev eth0 && ip addr add {adv.API4}/32 dev lo")
            pki = lab.Pki(L.dir)
            record = L.path("upstream.jsonl")
            L.spawn(up, lab.PYTHON, lab.MOCK, "--listen", f"{adv.API4}:443", "--cert", ":".join(pki.leaf(adv.HOST)),
                    "--record", record, log="mock.log")
            lab.wait_port(up, adv.API4, 443)
            ca = lab.make_lab_ca(L, owner_uid=lab.VEIL_UID)
            cfg = L.path("veil.yaml")
            lab.write_config(cfg, [("sidecar", "redirect", "0.0.0.0:15001")], ca, pki.ca,
                             extra=f"capture:\n  style: sidecar\n  exclude_uids: [{lab.VEIL_UID}]\n  ipv6: false\n")
            r = lab.run(lab.VEIL_IPTABLES, "install", "--config", cfg, "--netns", app.name, check=False)
            self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
            # A bypass leaves eth0 from the application's uid (root);
            # veild's own connections are uid 65534.
            app.sh("iptables -A OUTPUT -o eth0 -p tcp --dport 443 --syn -m owner --uid-owner 0 -j ACCEPT")

            def bypass():
                out = app.sh("iptables -nvxL OUTPUT").stdout
                return int(next(line.split()[0] for line in out.splitlines() if "owner UID match 0" in line))

            def start():
                p = L.spawn(app, lab.VEILD, "--config", cfg, "--workers", "2", log="veild.log", uid=lab.VEIL_UID)
                deadline = time.time() + 60
                while "event=started" not in open(L.path("veild.log")).read():
                    self.assertIsNone(p.poll(), "veild exited")
                    self.assertLess(time.time(), deadline)
                    time.sleep(0.05)
                return p

            def served():
                r = app.exec("curl", "-sS", "--max-time", "10", "--cacert", f"{ca}/ca.pem", "--resolve",
                             f"{adv.HOST}:443:{adv.API4}", f"https://{adv.HOST}/", check=False)
                return r.returncode == 0 and "hello from the mock" in r.stdout

            veild = start()
            self.assertTrue(served())
            veild.kill()
            veild.wait()
            # REDIRECT to a port nothing listens on: refused at once.
            self.assert_fails_closed(app, app, 15001, bypass, len(lab.records(record)), record,
                                     (7, "Couldn't connect to server"))
            veild = start()
            self.assertTrue(served(), "no service after the restart")
            self.assertEqual(bypass(), 0)
            L.stop(veild)
        finally:
            L.close()


if __name__ == "__main__":
    unittest.main(verbosity=2)
