"""Leak audit (issue 5): a soak of 20,000 requests with planted identifiers
through the appliance lab (adv.Appliance: veil-iptables gateway rules, as
deploy/lab runs it), four keep-alive clients in parallel (soak_client.py).

What reached the upstream namespace is checked twice:
- after TLS, at the mock: every recorded body, raw and JSON-decoded, for
  any identifier of the planted shapes (not only the planted values);
- on the wire, with tcpdump on the upstream namespace's interface: every
  TCP connection to :443 comes from veild's address (none went around the
  appliance), every payload byte toward the API is a TLS record (no
  plaintext HTTP), and no identifier appears in it. The capture cannot show
  the plaintext (TLS); that is what the mock's record is for.

veild's RSS is sampled through the soak: start (after a warm-up), end and
peak are printed, and the growth must stay bounded.
"""

import json
import os
import re
import signal
import struct
import subprocess
import threading
import time
import unittest

import adv
import lab

CLIENTS, PER_CLIENT = 4, 5000
SOAK = os.path.join(lab.HERE, "soak_client.py")
# Every shape soak_client.identifiers() plants.
SHAPES = re.compile(r"i-[0-9a-f]{17}|vpc-[0-9a-f]{8}|subnet-[0-9a-f]{17}|sg-[0-9a-f]{17}|arn:aws:iam::\d{12}|"
                    r"AKIA[A-J]{16}|\b10\.\d{1,3}\.\d{1,3}\.\d{1,3}\b|corp-logs-\d+|ip-10-\d+-\d+-7|vol-[0-9a-f]{17}")


def pcap_packets(path):
    """(src, dst, sport, dport, flags, seq, payload) of the IPv4/TCP packets
    of a pcap file (link type Ethernet)."""
    with open(path, "rb") as f:
        data = f.read()
    magic = struct.unpack("<I", data[:4])[0]
    endian = "<" if magic in (0xa1b2c3d4, 0xa1b23c4d) else ">"
    pos = 24
    while pos + 16 <= len(data):
        _, _, incl, _ = struct.unpack(endian + "IIII", data[pos:pos + 16])
        frame = data[pos + 16:pos + 16 + incl]
        pos += 16 + incl
        if len(frame) < 34 or frame[12:14] != b"\x08\x00" or frame[23] != 6:
            continue
        ihl = (frame[14] & 15) * 4
        ip_total = struct.unpack("!H", frame[16:18])[0]
        tcp = frame[14 + ihl:14 + ip_total]
        sport, dport, seq = struct.unpack("!HHI", tcp[:8])
        off = (tcp[12] >> 4) * 4
        yield (".".join(map(str, frame[26:30])), ".".join(map(str, frame[30:34])), sport, dport, tcp[13], seq,
               tcp[off:])


class Soak(unittest.TestCase):
    def setUp(self):
        self.A = adv.Appliance(scripted=False)
        self.A.start(timeouts={"idle": "30s", "response": "30s"})

    def tearDown(self):
        self.A.close()

    def test_twenty_thousand_requests_leak_nothing_and_memory_stays_bounded(self):
        import soak_client
        for n in (0, 7, 12345, 19999, 10 ** 6 + 199):  # the audit sees every planted identifier
            for ident in soak_client.identifiers(n):
                self.assertRegex(ident, SHAPES)
            raw, ids, _ = soak_client.body_for(n)
            self.assertEqual(len(SHAPES.findall(" ".join(adv.strings_of(json.loads(raw))))), len(ids))
        A = self.A
        pcap = A.lab.path("upstream.pcap")
        dump = A.up.popen("tcpdump", "-i", "eth0", "-U", "-s", "0", "-w", pcap, "tcp port 443",
                          stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.time() + 10
        while not (os.path.exists(pcap) and os.path.getsize(pcap) >= 24):
            self.assertLess(time.time(), deadline, "tcpdump did not start")
            time.sleep(0.05)
        time.sleep(0.3)

        def client(first, count):
            return A.cli.popen(lab.PYTHON, SOAK, "--cafile", f"{A.ca}/ca.pem", "--first", str(first),
                               "--count", str(count), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

        warm = client(10 ** 6, 200)  # warm-up (not counted): caches, pools, the leaf
        out, err = warm.communicate(timeout=120)
        self.assertEqual(json.loads(out)["ok"], 200, err)
        start = A.memory()["VmRSS"]
        A.reset_peak()
        samples, stop = [], threading.Event()

        def sample():
            while not stop.wait(0.5):
                samples.append(A.memory()["VmRSS"])

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        began = time.time()
        procs = [client(k * PER_CLIENT, PER_CLIENT) for k in range(CLIENTS)]
        stats = []
        for p in procs:
            out, err = p.communicate(timeout=600)
            self.assertEqual(p.returncode, 0, err[-2000:])
            stats.append(json.loads(out))
            if err:
                adv.say("soak client: " + err[-1000:])
        took = time.time() - began
        stop.set()
        sampler.join()
        end, peak = A.memory()["VmRSS"], A.memory()["VmHWM"]
        dump.send_signal(signal.SIGTERM)
        dump.wait(timeout=20)

        total = {k: sum(s[k] for s in stats) for k in stats[0]}
        adv.say(f"soak: {total['requests']} requests ({total['streams']} streamed) over {total['connections']} "
                f"connections in {took:.0f}s ({total['requests'] / took:.0f}/s); veild VmRSS start {start // 1024} MiB, "
                f"end {end // 1024} MiB, peak {peak // 1024} MiB (samples {min(samples) // 1024}-"
                f"{max(samples) // 1024} MiB)")
        self.assertEqual(total["requests"], CLIENTS * PER_CLIENT)
        self.assertGreaterEqual(total["requests"], 10000)
        self.assertEqual((total["ok"], total["errors"], total["not_restored"]), (total["requests"], 0, 0))

        # After TLS, at the mock: every request, nothing of the planted shapes.
        recs = [r for r in A.records() if r["path"] == "/v1/messages"]
        self.assertEqual(len(recs), total["requests"] + 200)
        leaks = []
        for r in recs:
            texts = [r["body"], *adv.strings_of(json.loads(r["body"])), *r["headers"].values(), r["path"]]
            leaks += [m.group(0) for t in texts for m in SHAPES.finditer(t)]
        self.assertEqual(leaks[:20], [], f"{len(leaks)} identifiers reached the upstream")
        tokens = sum(len(re.findall(r"\b[A-Z][A-Z0-9_]*_\d{3}\b", r["body"])) for r in recs)
        self.assertGreaterEqual(tokens, len(recs) * 10)  # each body carried its 10 as tokens

        # On the wire of the upstream namespace.
        syn_from, toward_api, next_seq, flows = {}, {}, {}, 0
        for src, dst, sport, dport, flags, seq, payload in pcap_packets(pcap):
            if dport != 443:
                continue
            flow = (src, sport)
            if flags & 0x12 == 0x02:  # SYN
                syn_from[src] = syn_from.get(src, 0) + 1
                flows += 1
                next_seq[flow] = (seq + 1) & 0xffffffff
                toward_api[flow] = bytearray()
                continue
            if not payload or flow not in next_seq:
                continue
            skip = (next_seq[flow] - seq) & 0xffffffff  # a retransmission repeats what came before
            if skip >= len(payload) and skip < 1 << 31:
                continue
            self.assertLess(skip, 1 << 31, f"{flow}: a gap in the capture")
            toward_api[flow].extend(payload[skip:])
            next_seq[flow] = (seq + len(payload)) & 0xffffffff
        self.assertEqual(set(syn_from), {adv.GW_UP}, f"connections to :443 not from veild: {syn_from}")
        for flow, stream in toward_api.items():
            pos = 0
            while pos + 5 <= len(stream):  # TLS records, back to back, to the last byte
                self.assertIn(stream[pos], (20, 21, 22, 23), f"{flow}: not TLS at byte {pos}")
                self.assertEqual(stream[pos + 1], 3)
                pos += 5 + struct.unpack("!H", stream[pos + 3:pos + 5])[0]
            self.assertEqual(pos, len(stream), f"{flow}: a partial record at the end")
            self.assertIsNone(SHAPES.search(stream.decode("latin-1")))
            self.assertNotIn(b"POST /v1/messages", stream)
        wire = sum(len(s) for s in toward_api.values())
        adv.say(f"capture: {flows} connections to the API, all from {adv.GW_UP}, {wire // 1024} KiB toward it, "
                f"all TLS records; mock record: {len(recs)} bodies, {tokens} tokens, 0 identifiers")

        # Memory: bounded growth over the soak (no per-request leak).
        self.assertLess(end - start, 32 * 1024, "veild's RSS grew with the requests")
        self.assertLess(peak - start, 64 * 1024)
        self.assertIsNone(A.veild.poll())


if __name__ == "__main__":
    unittest.main(verbosity=2)
