#!/usr/bin/python3
"""Golden-file test of `veil-iptables render` (as Istio does for its
iptables rules): every sample config in golden/ is rendered for each backend
and compared byte for byte with the checked-in output.

    golden.py VEIL_IPTABLES            compare (what meson test runs)
    golden.py VEIL_IPTABLES --update   rewrite the expected files

The test never rewrites anything; after an intended change to the rules run
`tests/iptables/update-golden` and review the diff before committing it.

Besides the byte comparison, every rendered file is checked for the rules'
invariants: each rule in a VEIL_ chain, each rule and jump with a "veil:"
comment.
"""

import difflib
import os
import re
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
GOLDEN = os.path.join(HERE, "golden")
BACKENDS = ["iptables", "nft"]
# Flavour names only change the tools named in the section headers; one
# config shows them.
EXTRA = {"sidecar": ["iptables-legacy", "iptables-nft"]}
# Renders limited to one family.
FAMILY = {"gateway-ipv6-off": ["6"]}


def cases():
    for name in sorted(f[:-5] for f in os.listdir(GOLDEN) if f.endswith(".yaml")):
        for backend in BACKENDS + EXTRA.get(name, []):
            yield name, backend, None, f"{name}.{backend}.rules"
        for fam in FAMILY.get(name, []):
            yield name, "iptables", fam, f"{name}.family{fam}.iptables.rules"


def render(binary, name, backend, family):
    cmd = [binary, "render", "--config", os.path.join(GOLDEN, name + ".yaml"), "--backend", backend]
    if family:
        cmd += ["--family", family]
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} exited {r.returncode}: {r.stderr}")
    return r.stdout


def invariants(text, where):
    """The contract of every rendered file, whatever the config."""
    problems = []
    for line in text.splitlines():
        if line.startswith("-A ") or line.startswith("-I "):
            chain = line.split()[1]
            is_jump = re.search(r" -j VEIL_[A-Z_]+$", line) is not None
            if line.startswith("-A ") and not chain.startswith("VEIL_"):
                problems.append(f"{where}: rule outside a VEIL_ chain: {line}")
            if line.startswith("-I ") and not is_jump:
                problems.append(f"{where}: insert that is not a jump into a VEIL_ chain: {line}")
            if '--comment "veil: ' not in line:
                problems.append(f"{where}: rule without a veil comment: {line}")
        elif line.startswith("\t\t") and not line.startswith("\t\ttype "):
            if ' comment "veil: ' not in line and line.strip() != "flags timeout":
                problems.append(f"{where}: nft rule without a veil comment: {line}")
    chains = re.findall(r"^\tchain (\S+) \{\n((?:\t\t.*\n)*)", text, re.M)
    for chain, body in chains:
        base = body.startswith("\t\ttype ")
        if not base and not chain.startswith("VEIL_"):
            problems.append(f"{where}: nft chain {chain} is neither a base chain nor VEIL_")
        if base and any(" jump VEIL_" not in l for l in body.splitlines()[1:]):
            problems.append(f"{where}: nft base chain {chain} holds more than jumps")
    return problems


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    binary, update = sys.argv[1], "--update" in sys.argv[2:]
    failures, seen = [], set()
    for name, backend, family, expected_name in cases():
        seen.add(expected_name)
        path = os.path.join(GOLDEN, expected_name)
        got = render(binary, name, backend, family)
        if got != render(binary, name, backend, family):
            failures.append(f"{expected_name}: two renders differ (not deterministic)")
        failures += invariants(got, expected_name)
        if update:
            with open(path, "w") as f:
                f.write(got)
            continue
        if not os.path.exists(path):
            failures.append(f"{expected_name}: missing; run tests/iptables/update-golden")
            continue
        with open(path) as f:
            want = f.read()
        if got != want:
            diff = "".join(difflib.unified_diff(want.splitlines(True), got.splitlines(True),
                                                f"golden/{expected_name}", "rendered"))
            failures.append(f"{expected_name}: rendered output differs:\n{diff}")
    for f in sorted(os.listdir(GOLDEN)):
        if f.endswith(".rules") and f not in seen:
            failures.append(f"{f}: no config renders it (stale golden file)")
    for f in failures:
        print(f"FAIL {f}")
    print(f"{len(seen)} golden files, {len(failures)} failures" + (" (updated)" if update else ""))
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
