"""Request smuggling and framing against the real veild (issue 5), both ways:

- from the client, over TLS, with exact bytes: each shape gets its status
  and `veil_…` error type, veild closes the connection (Connection: close,
  then close_notify), and nothing reaches the upstream;
- from the upstream (scripted_upstream.py, chosen by path): a bad head is a
  502 JSON error and that upstream connection is closed, never reused; a bad
  body after a good head ends the client's connection abnormally.

Lab: adv.Appliance (gateway, veil-iptables rules).
"""

import json
import time
import unittest

import adv
import lab

H = "Host: api.anthropic.com\r\n"
JSON = "Content-Type: application/json\r\n"
MASKED = "POST /v1/messages HTTP/1.1\r\n" + H + JSON
BODY = '{"a":1}'  # 7 bytes


def b(s):
    return s.encode("latin-1")


# name → (raw request, status, error type). Every one is refused before
# anything goes upstream; the route is the masked one unless it says /other.
CLIENT_CASES = {
    "cl_and_te": (MASKED + "Content-Length: 7\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400, "veil_bad_request"),
    "te_and_cl": (MASKED + "Transfer-Encoding: chunked\r\nContent-Length: 7\r\n\r\n0\r\n\r\n", 400, "veil_bad_request"),
    "cl_and_te_unmasked": ("POST /other HTTP/1.1\r\n" + H + "Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n"
                           "0\r\n\r\n", 400, "veil_bad_request"),
    "differing_cl": (MASKED + "Content-Length: 7\r\nContent-Length: 8\r\n\r\n" + BODY + "x", 400, "veil_bad_request"),
    "duplicate_equal_cl": (MASKED + "Content-Length: 7\r\nContent-Length: 7\r\n\r\n" + BODY, 400, "veil_bad_request"),
    "cl_list": (MASKED + "Content-Length: 7, 7\r\n\r\n" + BODY, 400, "veil_bad_request"),
    "cl_plus_sign": (MASKED + "Content-Length: +7\r\n\r\n" + BODY, 400, "veil_bad_request"),
    "cl_overflow": (MASKED + "Content-Length: 99999999999999999999999\r\n\r\n", 400, "veil_bad_request"),
    "te_xchunked": (MASKED + "Transfer-Encoding: xchunked\r\n\r\n7\r\n" + BODY + "\r\n0\r\n\r\n", 400, "veil_bad_request"),
    "te_chunked_chunked": (MASKED + "Transfer-Encoding: chunked, chunked\r\n\r\n0\r\n\r\n", 400, "veil_bad_request"),
    "te_twice": (MASKED + "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400,
                 "veil_bad_request"),
    "te_gzip_chunked": (MASKED + "Transfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n", 501, "veil_not_implemented"),
    "te_in_http10": ("POST /v1/messages HTTP/1.0\r\n" + H + JSON + "Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400,
                     "veil_bad_request"),
    "space_in_name": (MASKED + "Bad Name: x\r\nContent-Length: 7\r\n\r\n" + BODY, 400, "veil_bad_request"),
    "space_before_colon": (MASKED + "Content-Length : 7\r\n\r\n" + BODY, 400, "veil_bad_request"),
    "nul_in_name": (MASKED + "X-\x00Y: z\r\nContent-Length: 7\r\n\r\n" + BODY, 400, "veil_bad_request"),
    "nul_in_value": (MASKED + "X-A: a\x00b\r\nContent-Length: 7\r\n\r\n" + BODY, 400, "veil_bad_request"),
    "obs_fold": (MASKED + "X-A: a\r\n folded\r\nContent-Length: 7\r\n\r\n" + BODY, 400, "veil_bad_request"),
    "bare_lf": ("POST /v1/messages HTTP/1.1\n" + H + "Content-Length: 7\n\n" + BODY, 400, "veil_bad_request"),
    "bare_cr": (MASKED + "X-A: a\rb\r\nContent-Length: 7\r\n\r\n" + BODY, 400, "veil_bad_request"),
    "chunk_size_not_hex": (MASKED + "Transfer-Encoding: chunked\r\n\r\nzz\r\n" + BODY + "\r\n0\r\n\r\n", 400,
                           "veil_bad_request"),
    "chunk_size_negative": (MASKED + "Transfer-Encoding: chunked\r\n\r\n-7\r\n" + BODY + "\r\n0\r\n\r\n", 400,
                            "veil_bad_request"),
    "chunk_size_overflow": (MASKED + "Transfer-Encoding: chunked\r\n\r\n1ffffffffffffffff\r\n" + BODY + "\r\n", 400,
                            "veil_bad_request"),
    "chunk_size_over_body_limit": (MASKED + "Transfer-Encoding: chunked\r\n\r\n10000000\r\n" + BODY, 413,
                                   "veil_body_too_large"),
    "chunk_without_crlf": (MASKED + "Transfer-Encoding: chunked\r\n\r\n7\r\n" + BODY + "XX0\r\n\r\n", 400,
                           "veil_bad_request"),
    "chunk_line_bare_lf": (MASKED + "Transfer-Encoding: chunked\r\n\r\n7\n" + BODY + "\r\n0\r\n\r\n", 400,
                           "veil_bad_request"),
    "chunk_unmasked_route": ("POST /other HTTP/1.1\r\n" + H + "Transfer-Encoding: chunked\r\n\r\nzz\r\nxx\r\n", 400,
                             "veil_bad_request"),
    "no_host": ("POST /v1/messages HTTP/1.1\r\n" + JSON + "Content-Length: 7\r\n\r\n" + BODY, 400, "veil_bad_request"),
    "two_hosts": (MASKED + H + "Content-Length: 7\r\n\r\n" + BODY, 400, "veil_bad_request"),
    "host_not_the_sni": ("POST /v1/messages HTTP/1.1\r\nHost: evil.example.com\r\n" + JSON + "Content-Length: 7\r\n\r\n"
                         + BODY, 421, "veil_misdirected_request"),
    "http2_preface": ("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 505, "veil_version_not_supported"),
    "http09": ("GET /\r\n\r\n", 400, "veil_bad_request"),
    "unknown_expectation": (MASKED + "Expect: 200-ok\r\nContent-Length: 7\r\n\r\n" + BODY, 417,
                            "veil_expectation_failed"),
    "upgrade": ("GET / HTTP/1.1\r\n" + H + "Connection: upgrade\r\nUpgrade: websocket\r\n\r\n", 501,
                "veil_not_implemented"),
    "request_line_9k": ("GET /" + "a" * 9000 + " HTTP/1.1\r\n" + H + "\r\n", 414, "veil_uri_too_long"),
    "headers_65k": ("GET / HTTP/1.1\r\n" + H + "".join(f"X-{i}: {'v' * 1000}\r\n" for i in range(66)) + "\r\n", 431,
                    "veil_headers_too_large"),
    "header_count_101": ("GET / HTTP/1.1\r\n" + H + "".join(f"X-{i}: v\r\n" for i in range(100)) + "\r\n", 431,
                         "veil_headers_too_large"),
}


class Framing(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.A = adv.Appliance()
        try:
            cls.A.start(timeouts={"response": "3s"})
        except BaseException:
            cls.A.close()
            raise

    @classmethod
    def tearDownClass(cls):
        cls.A.close()

    def refused(self, raw, status, etype, dst=adv.API4):
        """One connection: exactly one error response, then veild's close_notify."""
        rs, c = self.A.exchange(b(raw) if isinstance(raw, str) else raw, dst=dst)
        self.assertEqual(len(rs), 1, rs)
        r = rs[0]
        self.assertEqual(r.status, status, r)
        self.assertTrue(r.complete, r)
        self.assertEqual(r.error_type(), etype, r)
        self.assertEqual(r.json()["error"]["side"], "downstream")
        self.assertEqual(r.header("connection"), "close")
        self.assertEqual(c.end, "close_notify", "veild did not close the connection cleanly after the error")
        c.close()
        return r

    def test_client_smuggling_and_framing_shapes_are_refused_before_anything_goes_upstream(self):
        records, script = len(self.A.records()), len(self.A.script_events())
        for name, (raw, status, etype) in CLIENT_CASES.items():
            with self.subTest(case=name):
                dst = adv.SCRIPT4 if name.endswith("unmasked_route") or name.endswith("unmasked") else adv.API4
                self.refused(raw, status, etype, dst=dst)
        time.sleep(0.3)
        self.assertEqual(len(self.A.records()), records, "a refused request reached the mock upstream")
        reqs = [e for e in self.A.script_events()[script:] if e["event"] == "request"]
        self.assertEqual(reqs, [], "a refused request reached the scripted upstream")

    def test_pipelined_requests_in_one_tls_record_are_answered_in_order(self):
        before = len(self.A.records())
        body = json.dumps({"model": "m", "max_tokens": 1, "messages": [{"role": "user", "content": "i-0123456789abcdef0"}]})
        raw = (adv.request("GET", "/first") + adv.request("GET", "/second") +
               adv.request("POST", "/v1/messages", body, {"Content-Type": "application/json"}) +
               adv.request("GET", "/fourth"))
        self.assertLess(len(raw), 16384)  # one record
        rs, c = self.A.exchange(raw, n=4, wait_end=0)
        self.assertEqual([r.status for r in rs], [200, 200, 200, 200], rs)
        self.assertEqual([r.header("x-mock-path") for r in (rs[0], rs[1], rs[3])], ["/first", "/second", "/fourth"])
        self.assertIn(b"i-0123456789abcdef0", rs[2].body)  # restored
        recs = self.A.records()[before:]
        self.assertEqual([x["path"] for x in recs], ["/first", "/second", "/v1/messages", "/fourth"])
        self.assertNotIn("i-0123456789abcdef0", recs[2]["body"])
        # Still open for more (keep-alive).
        c.send(adv.request("GET", "/fifth"))
        more = adv.parse_responses(c.read(until=adv.complete_responses(1)))
        self.assertEqual(more[0].header("x-mock-path"), "/fifth")
        c.close()

    def test_a_bad_request_in_a_pipeline_ends_it_and_what_follows_is_never_forwarded(self):
        before = len(self.A.records())
        raw = (adv.request("GET", "/before") + b(CLIENT_CASES["cl_and_te_unmasked"][0]) + adv.request("GET", "/after"))
        rs, c = self.A.exchange(raw, n=2)
        self.assertEqual([r.status for r in rs], [200, 400], rs)
        self.assertEqual(c.end, "close_notify")
        self.assertEqual([x["path"] for x in self.A.records()[before:]], ["/before"])

    def test_truncated_body_then_close_notify_is_refused_at_once(self):
        # The client says it will send nothing more: veild answers the
        # truncated request at once instead of waiting for body_idle.
        before = len(self.A.records())
        c = self.A.connect()
        c.send(b(MASKED + "Content-Length: 100\r\n\r\n" + '{"messages": "i-0123456789abcdef0'))
        time.sleep(0.2)
        started = time.time()
        c.close_notify()
        data = c.read(timeout=5)
        took = time.time() - started
        rs = adv.parse_responses(data, eof=True)
        self.assertEqual([r.status for r in rs], [400], data)
        self.assertEqual(rs[0].error_type(), "veil_bad_request")
        self.assertEqual(c.end, "close_notify")
        self.assertLess(took, 1.5, "veild waited for a timeout on a request the client had ended")
        self.assertEqual(len(self.A.records()), before)

    def test_truncated_body_then_tcp_half_close_ends_the_connection_and_nothing_is_forwarded(self):
        before, script = len(self.A.records()), len(self.A.script_events())
        for dst, path in ((adv.API4, "/v1/messages"), (adv.SCRIPT4, "/ok")):
            with self.subTest(route=path):
                c = self.A.connect(dst)
                c.send(b(f"POST {path} HTTP/1.1\r\n" + H + JSON + "Content-Length: 100\r\n\r\n" +
                         '{"messages": "i-0123456789abcdef0'))
                time.sleep(0.2)
                c.sock.shutdown(adv.socket.SHUT_WR)  # FIN, no close_notify
                # Without close_notify the TLS stream itself is truncated
                # (OpenSSL takes it as a fatal error and says decode_error): no answer can be
                # encrypted any more, so the connection just ends.
                data = c.read(timeout=5)
                self.assertEqual(data, b"", "a truncated request got an answer")
                self.assertEqual(c.end, "alert:TLSV1_ALERT_DECODE_ERROR")
        time.sleep(0.3)
        self.assertEqual(len(self.A.records()), before)
        ev = self.A.script_events()[script:]
        self.assertEqual([e for e in ev if e["event"] == "request"], [])
        self.assertTrue(any(e["event"] == "closed" for e in ev), "the streamed upstream connection was left open")

    def test_a_pipelined_request_cut_by_close_notify_during_the_previous_response_is_refused_at_once(self):
        # A (slow response) and the head and part of B's body in one write;
        # close_notify once A's head is back, while A's body still comes.
        # B can never complete: it is answered 400 as soon as A is done,
        # not 408 at body_idle (2 s here), and nothing of it is answered 200.
        c = self.A.connect(adv.SCRIPT4)
        c.send(b("GET /slow HTTP/1.1\r\n" + H + "\r\n" +
                 "POST /ok HTTP/1.1\r\n" + H + JSON + "Content-Length: 100\r\n\r\n" + '{"a": "only part'))
        data = c.read(timeout=5, until=lambda d: b"\r\n\r\n" in d)
        self.assertIn(b"HTTP/1.1 200", data)
        c.close_notify()
        data += c.read(timeout=8)
        rs = adv.parse_responses(data, eof=True)
        self.assertEqual([r.status for r in rs], [200, 400], data)
        self.assertEqual(rs[0].body, b"s" * 200)
        self.assertEqual(rs[1].error_type(), "veil_bad_request")
        self.assertEqual(c.end, "close_notify")
        line = [e for e in self.A.events("request") if e.get("path") == "/ok"][-1]
        self.assertEqual(line["status"], "400", line)
        self.assertEqual(line["note"], "bad_request: connection closed in the middle of the body")
        self.assertLess(int(line["dur_ms"]), 1000, "B waited for a timeout")

    def test_a_streamed_body_the_upstream_stops_taking_is_a_504_blamed_on_the_upstream(self):
        # The upstream reads the head of a 64 MiB upload, then nothing:
        # veild stops reading the client (backpressure). At body_idle that
        # is the upstream's stall (504), not the client's (408).
        path = self.A.lab.path("upload.bin")
        with open(path, "wb") as f:
            f.truncate(64 * 1024 * 1024)
        started = time.time()
        r = self.A.curl("-o", "/dev/null", "-w", "%{http_code}", "-H", "Content-Type: application/octet-stream",
                        "--data-binary", "@" + path, f"https://{adv.HOST}/stall-body", dst=adv.SCRIPT4, timeout=30)
        took = time.time() - started
        self.assertEqual(r.stdout.strip()[-3:], "504", r.stdout + r.stderr)
        self.assertLess(took, 15)
        line = [e for e in self.A.events("request") if e.get("path") == "/stall-body"][-1]
        self.assertEqual(line.get("status"), "504", line)
        self.assertIn("upstream stalled taking the request body", json.dumps(line))

    def test_a_complete_request_then_close_notify_still_gets_its_whole_response(self):
        # Half-close after the request is legal: the answer comes, then veild closes.
        body = json.dumps({"model": "m", "max_tokens": 1, "messages": [{"role": "user", "content": "vpc-0a1b2c3d"}]})
        c = self.A.connect()
        c.send(adv.request("POST", "/v1/messages", body, {"Content-Type": "application/json"}))
        c.close_notify()
        rs = adv.parse_responses(c.read(timeout=5), eof=True)
        self.assertEqual([r.status for r in rs], [200], rs)
        self.assertTrue(rs[0].complete)
        self.assertIn(b"vpc-0a1b2c3d", rs[0].body)
        self.assertEqual(c.end, "close_notify")

    # ------------------------------------------------------------ from the upstream

    def script_conns(self, since):
        """conn id → list of events, for events after index `since`."""
        out = {}
        for e in self.A.script_events()[since:]:
            out.setdefault(e["conn"], []).append(e)
        return out

    def test_upstream_connection_is_reused_for_good_responses(self):
        # The control for the cases below: keep-alive works upstream too.
        since = len(self.A.script_events())
        c = self.A.connect(adv.SCRIPT4)
        for _ in range(3):
            c.send(adv.request("GET", "/ok"))
            rs = adv.parse_responses(c.read(until=adv.complete_responses(1)))
            self.assertEqual((rs[0].status, rs[0].body), (200, b"ok"))
        c.close_notify()
        c.read(timeout=3)
        time.sleep(0.3)
        conns = self.script_conns(since)
        self.assertEqual(len(conns), 1, conns)
        self.assertEqual([e["event"] for e in list(conns.values())[0]], ["open", "request", "request", "request", "closed"])

    def test_bad_upstream_heads_are_502_and_the_upstream_connection_is_closed_not_reused(self):
        import scripted_upstream as su
        for script in su.BAD_HEADS:
            with self.subTest(script=script):
                since = len(self.A.script_events())
                rs, c = self.A.exchange(adv.request("GET", "/" + script), dst=adv.SCRIPT4)
                self.assertEqual([r.status for r in rs], [502], rs)
                self.assertEqual(rs[0].error_type(), "veil_bad_gateway")
                self.assertEqual(rs[0].json()["error"]["side"], "upstream")
                self.assertEqual(rs[0].header("connection"), "close")
                self.assertEqual(c.end, "close_notify")
                self.assert_upstream_closed_and_next_is_new(since)

    def test_bad_upstream_bodies_end_the_client_connection_abnormally(self):
        import scripted_upstream as su
        for script in su.BAD_BODIES:
            with self.subTest(script=script):
                since = len(self.A.script_events())
                rs, c = self.A.exchange(adv.request("GET", "/" + script), dst=adv.SCRIPT4)
                self.assertFalse(any(r.complete and r.status == 200 for r in rs), rs)
                self.assertEqual(c.end, "reset")
                self.assert_upstream_closed_and_next_is_new(since)

    def test_bytes_after_a_complete_upstream_response_are_never_relayed_as_a_response(self):
        since = len(self.A.script_events())
        c = self.A.connect(adv.SCRIPT4)
        c.send(adv.request("GET", "/extra-bytes"))
        rs = adv.parse_responses(c.read(until=adv.complete_responses(1)))
        self.assertEqual((rs[0].status, rs[0].body), (200, b"ok"))
        time.sleep(0.2)
        adv.quiet(c.send, adv.request("GET", "/ok"))
        rest = c.read(timeout=3)
        self.assertNotIn(b"smuggled", rest)
        self.assertEqual(adv.parse_responses(rest), [])
        self.assertIn(c.end, ("close_notify", "reset"))
        self.assert_upstream_closed_and_next_is_new(since)

    def test_an_upstream_that_never_answers_is_a_504(self):
        since = len(self.A.script_events())
        started = time.time()
        rs, c = self.A.exchange(adv.request("GET", "/hang"), dst=adv.SCRIPT4)
        self.assertEqual([r.status for r in rs], [504], rs)
        self.assertEqual(rs[0].error_type(), "veil_gateway_timeout")
        self.assertGreaterEqual(time.time() - started, 2.5)  # timeouts.response: 3s
        self.assertEqual(c.end, "close_notify")
        self.assert_upstream_closed_and_next_is_new(since)

    def assert_upstream_closed_and_next_is_new(self, since):
        deadline = time.time() + 5
        while time.time() < deadline:
            conns = self.script_conns(since)
            if conns and all(any(e["event"] == "closed" for e in evs) for evs in conns.values()):
                break
            time.sleep(0.05)
        conns = self.script_conns(since)
        self.assertEqual(len(conns), 1, conns)
        (conn, evs), = conns.items()
        self.assertEqual(sum(e["event"] == "request" for e in evs), 1, evs)
        self.assertTrue(any(e["event"] == "closed" for e in evs), f"veild kept upstream connection {conn} open: {evs}")
        rs, c = self.A.exchange(adv.request("GET", "/ok"), dst=adv.SCRIPT4, wait_end=0)
        self.assertEqual(rs[0].status, 200)
        c.close()
        time.sleep(0.1)
        later = [e for e in self.A.script_events() if e["event"] == "request" and e["script"] == "ok"]
        self.assertGreater(later[-1]["conn"], conn, "the next request went over the old upstream connection")


if __name__ == "__main__":
    unittest.main(verbosity=2)
