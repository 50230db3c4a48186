#!/usr/bin/python3
"""One client of the leak-audit soak (test_adv_soak.py): COUNT requests to
the Messages API over keep-alive HTTPS, each body carrying its own planted
AWS identifiers (identifiers(n) for the request's global number n; some
JSON-escaped, a tenth streamed), and checks that every answer came back with
its identifiers restored. Prints one JSON line of counts.

usage: soak_client.py --cafile CA --first N --count COUNT [--host H]
"""

import argparse
import http.client
import json
import ssl
import sys
import time


def identifiers(n):
    """Planted identifiers of request n: distinct per request, one of each
    shape the audit looks for (test_adv_soak.SHAPES)."""
    return [
        f"i-{n:017x}",
        f"vpc-{n:08x}",
        f"subnet-{n:017x}",
        f"sg-{n:017x}",
        f"arn:aws:iam::{100000000000 + n}:role/Svc{n}",
        "AKIA" + format(n, "016d").translate(str.maketrans("0123456789", "ABCDEFGHIJ")),
        f"10.{(n >> 16) & 255}.{(n >> 8) & 255}.{n & 255}",
        f"corp-logs-{n}",  # written as s3://corp-logs-N/x
        f"ip-10-{(n >> 8) & 255}-{n & 255}-7.ec2.internal",
        f"vol-{n:017x}",
    ]


def body_for(n):
    ids = identifiers(n)
    text = "Incident: " + ", ".join(f"s3://{i}/x" if i.startswith("corp-logs-") else i for i in ids) + ". Why?"
    obj = {"model": "claude-test", "max_tokens": 64, "stream": n % 10 == 0,
           "messages": [{"role": "user", "content": text}]}
    raw = json.dumps(obj)
    if n % 7 == 0:  # the same identifiers behind JSON escapes
        raw = raw.replace(ids[0], "\\u0069" + ids[0][1:]).replace(ids[1], "v\\u0070c" + ids[1][3:])
    return raw, ids, obj["stream"]


def restored_text(resp_body, stream):
    if not stream:
        return json.loads(resp_body)["content"][0]["text"]
    text = ""
    for line in resp_body.decode().splitlines():
        if line.startswith("data: "):
            ev = json.loads(line[6:])
            if ev.get("type") == "content_block_delta" and ev["delta"].get("type") == "text_delta":
                text += ev["delta"]["text"]
    return text


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--cafile", required=True)
    ap.add_argument("--first", type=int, required=True)
    ap.add_argument("--count", type=int, required=True)
    ap.add_argument("--host", default="api.anthropic.com")
    a = ap.parse_args()
    ctx = ssl.create_default_context(cafile=a.cafile)
    stats = {"requests": 0, "ok": 0, "streams": 0, "not_restored": 0, "errors": 0, "connections": 0}
    conn = None
    started = time.time()
    for n in range(a.first, a.first + a.count):
        raw, ids, stream = body_for(n)
        for attempt in range(2):
            try:
                if conn is None:
                    conn = http.client.HTTPSConnection(a.host, 443, context=ctx, timeout=30)
                    stats["connections"] += 1
                conn.request("POST", "/v1/messages", raw, {"Content-Type": "application/json"})
                r = conn.getresponse()
                data = r.read()
                break
            except (OSError, http.client.HTTPException) as e:
                conn = None
                if attempt:
                    stats["errors"] += 1
                    sys.stderr.write(f"request {n}: {e!r}\n")
                    data = None
        stats["requests"] += 1
        if data is None:
            continue
        if r.status != 200:
            stats["errors"] += 1
            sys.stderr.write(f"request {n}: status {r.status} {data[:200]!r}\n")
            continue
        stats["streams"] += stream
        text = restored_text(data, stream)
        if all(i in text for i in ids):
            stats["ok"] += 1
        else:
            stats["not_restored"] += 1
            sys.stderr.write(f"request {n}: not restored: {text[:300]}\n")
    stats["seconds"] = round(time.time() - started, 1)
    print(json.dumps(stats))


if __name__ == "__main__":
    main()
