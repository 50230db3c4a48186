"""deploy/ checked as far as a machine without a cluster or a container
engine allows: Kubernetes manifests against the API schemas and against
veil's own contracts, the systemd unit with systemd-analyze, and the
Containerfile's runtime stage against the binaries the build produces.

Run by meson (tests/meson.build) with VEIL_BUILD set to the build dir.
"""

import json
import os
import re
import shutil
import subprocess
import tempfile
import unittest

import yaml

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.abspath(os.path.join(HERE, "..", ".."))
DEPLOY = os.path.join(REPO, "deploy")
BUILD = os.environ.get("VEIL_BUILD", os.path.join(REPO, "build"))
VEILD = os.path.join(BUILD, "daemon", "veild", "veild")
VEILCTL = os.path.join(BUILD, "daemon", "veilctl", "veilctl")
IPTABLES = os.path.join(BUILD, "iptables", "veil-iptables")


def read(path):
    with open(path) as f:
        return f.read()


def run(*cmd, **kw):
    return subprocess.run(list(cmd), capture_output=True, text=True, **kw)


class Kubernetes(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="veil-deploy-test-")
        # The kustomizations read ca/ from their folder; a real lab CA there
        # (removed afterwards) lets the generators and --check-config run.
        cls.made = []
        for style in ("sidecar", "gateway"):
            ca = os.path.join(DEPLOY, "kubernetes", style, "ca")
            if not os.path.exists(ca):
                cls.made.append(ca)
                r = run(VEILCTL, "ca", "init", "--out", ca, "--permit", "anthropic.com")
                assert r.returncode == 0, r.stderr
                with open(os.path.join(ca, "bundle.pem"), "w") as f:
                    f.write(read(os.path.join(ca, "ca.pem")))
        r = run("node", os.path.join(HERE, "validate-k8s.mjs"), os.path.join(DEPLOY, "kubernetes"))
        cls.validation = r
        cls.objects = json.loads(r.stdout) if r.stdout.strip() else []

    @classmethod
    def tearDownClass(cls):
        for d in cls.made:
            shutil.rmtree(d, ignore_errors=True)
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def deployment(self, name):
        for o in self.objects:
            if o["obj"]["kind"] == "Deployment" and o["obj"]["metadata"]["name"] == name:
                return o["obj"]
        self.fail(f"no Deployment {name}")

    def generated(self, kind, name, namespace):
        for o in self.objects:
            m = o["obj"]["metadata"]
            if o.get("generated") == kind and m["name"] == name and m.get("namespace") == namespace:
                return o["obj"]["files"]
        self.fail(f"no generated {kind} {name} in {namespace}")

    def veil_yaml(self, namespace):
        """The ConfigMap's veil.yaml, with the CA paths pointed at a real CA."""
        src = self.generated("ConfigMap", "veil-config", namespace)["veil.yaml"]
        cfg = yaml.safe_load(read(src))
        ca = os.path.join(self.tmp, namespace + "-ca")
        if not os.path.exists(ca):
            self.assertEqual(run(VEILCTL, "ca", "init", "--out", ca, "--permit", "anthropic.com").returncode, 0)
        text = read(src).replace(cfg["ca"]["cert"], f"{ca}/ca.pem").replace(cfg["ca"]["key"], f"{ca}/ca.key")
        path = os.path.join(self.tmp, namespace + ".yaml")
        with open(path, "w") as f:
            f.write(text)
        return cfg, path

    def test_manifests_match_the_kubernetes_api_schemas(self):
        self.assertEqual(self.validation.returncode, 0, self.validation.stderr)
        kinds = sorted(o["obj"]["kind"] for o in self.objects if "generated" not in o)
        self.assertEqual(kinds, ["Deployment", "Deployment", "Namespace", "Namespace"])

    def test_kubectl_kustomize_builds_both_examples_when_kubectl_is_installed(self):
        if not shutil.which("kubectl"):
            self.skipTest("kubectl is not installed (Debian 12's kubernetes-client predates kustomize 5)")
        for style in ("sidecar", "gateway"):
            r = run("kubectl", "kustomize", os.path.join(DEPLOY, "kubernetes", style))
            self.assertEqual(r.returncode, 0, r.stderr)
            docs = [d for d in yaml.safe_load_all(r.stdout) if d]
            self.assertIn("Deployment", [d["kind"] for d in docs])

    def test_the_configmaps_are_valid_veil_configurations_with_renderable_rules(self):
        for ns in ("veil-demo", "veil-gateway"):
            cfg, path = self.veil_yaml(ns)
            r = run(VEILD, "--check-config", path)
            self.assertEqual(r.returncode, 0, r.stderr)
            r = run(IPTABLES, "render", "--config", path)
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertIn("VEIL_", r.stdout)

    def test_sidecar_veild_runs_under_the_uid_its_rules_exclude(self):
        d = self.deployment("checkout-assistant")["spec"]["template"]["spec"]
        veild = next(c for c in d["initContainers"] if c["name"] == "veild")
        self.assertEqual(veild.get("restartPolicy"), "Always", "veild must be a native sidecar")
        cfg, _ = self.veil_yaml("veil-demo")
        uid = veild["securityContext"]["runAsUser"]
        self.assertIn(uid, cfg["capture"]["exclude_uids"])
        self.assertTrue(veild["securityContext"]["runAsNonRoot"])
        self.assertEqual(veild["securityContext"]["capabilities"]["drop"], ["ALL"])
        # The rules go in before veild and the application start.
        self.assertEqual(d["initContainers"][0]["name"], "veil-init")
        init = d["initContainers"][0]
        self.assertIn("veil-iptables install", " ".join(init["command"]))
        self.assertTrue({"NET_ADMIN", "NET_RAW"} <= set(init["securityContext"]["capabilities"]["add"]))
        # Ports: the listener veild binds is the one probed.
        port = int(cfg["listeners"][0]["address"].rsplit(":", 1)[1])
        self.assertEqual(veild["startupProbe"]["tcpSocket"]["port"], port)

    def test_the_ca_key_reaches_veild_only_and_the_application_trusts_the_ca(self):
        for name in ("checkout-assistant", "veil-gateway"):
            spec = self.deployment(name)["spec"]["template"]["spec"]
            key_volumes = {v["name"] for v in spec["volumes"] if v.get("secret", {}).get("secretName") == "veil-ca"}
            self.assertTrue(key_volumes)
            for v in spec["volumes"]:
                if v["name"] in key_volumes:
                    self.assertEqual(v["secret"]["defaultMode"], 0o400)
            for c in spec.get("containers", []) + spec.get("initContainers", []):
                mounts = {m["name"] for m in c.get("volumeMounts", [])}
                if mounts & key_volumes:
                    self.assertEqual(c["name"], "veil-init", f"{c['name']} mounts the CA key Secret")
        app = next(c for c in self.deployment("checkout-assistant")["spec"]["template"]["spec"]["containers"]
                   if c["name"] == "app")
        env = {e["name"]: e.get("value") for e in app["env"]}
        self.assertTrue(env["NODE_EXTRA_CA_CERTS"].startswith("/etc/veil-trust/"))
        trust = self.generated("ConfigMap", "veil-trust", "veil-demo")
        self.assertNotIn("ca.key", trust)
        self.assertNotIn("PRIVATE KEY", read(trust["ca.pem"]))

    def test_the_init_container_hands_veild_a_key_it_accepts(self):
        # veild refuses a key with group/other bits; the copy must be 0600
        # and owned by veild's uid (sidecar) or root (gateway, veild as root).
        for name, owner in (("checkout-assistant", "1337"), ("veil-gateway", None)):
            spec = self.deployment(name)["spec"]["template"]["spec"]
            script = " ".join(spec["initContainers"][0]["command"])
            m = re.search(r"install -m (\d+)( -o (\d+))?[^/]*/etc/veil-ca/ca\.key /run/veil/ca\.key", script)
            self.assertIsNotNone(m, script)
            self.assertEqual(m.group(1), "0600")
            self.assertEqual(m.group(3), owner)

    def test_the_gateway_keeps_only_net_admin_and_forwards(self):
        spec = self.deployment("veil-gateway")["spec"]["template"]["spec"]
        veild = next(c for c in spec["containers"] if c["name"] == "veild")
        self.assertEqual(veild["securityContext"]["capabilities"], {"drop": ["ALL"], "add": ["NET_ADMIN"]})
        sysctls = {s["name"]: s["value"] for s in spec["securityContext"]["sysctls"]}
        self.assertEqual(sysctls["net.ipv4.ip_forward"], "1")
        cfg, _ = self.veil_yaml("veil-gateway")
        self.assertEqual(cfg["capture"]["style"], "gateway")
        self.assertEqual(cfg["listeners"][0]["mode"], "tproxy")


class Systemd(unittest.TestCase):
    UNIT = os.path.join(DEPLOY, "systemd", "veild.service")

    def unit_for_this_build(self, tmp):
        """The unit with its binaries pointed at this build, so verify can
        check that every Exec line runs something real."""
        with open(self.UNIT) as f:
            text = f.read()
        text = text.replace("/usr/sbin/veild", VEILD).replace("/usr/sbin/veil-iptables", IPTABLES)
        path = os.path.join(tmp, "veild.service")
        with open(path, "w") as f:
            f.write(text)
        return path

    def test_systemd_analyze_verify_accepts_the_unit(self):
        if not shutil.which("systemd-analyze"):
            self.skipTest("systemd-analyze is not installed")
        with tempfile.TemporaryDirectory() as tmp:
            r = run("systemd-analyze", "verify", "--man=no", self.unit_for_this_build(tmp))
        # verify prints warnings for anything it does not like, errors exit non-zero.
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stderr.strip(), "", r.stderr)

    def test_the_unit_is_hardened(self):
        if not shutil.which("systemd-analyze"):
            self.skipTest("systemd-analyze is not installed")
        with tempfile.TemporaryDirectory() as tmp:
            r = run("systemd-analyze", "security", "--offline=yes", self.unit_for_this_build(tmp))
        m = re.search(r"Overall exposure level for \S+: ([0-9.]+)", r.stdout + r.stderr)
        self.assertIsNotNone(m, r.stdout + r.stderr)
        self.assertLessEqual(float(m.group(1)), 2.0, "systemd-analyze security: exposure above 2.0 (OK)")
        with open(self.UNIT) as f:
            text = f.read()
        self.assertIn("CapabilityBoundingSet=CAP_NET_ADMIN CAP_NET_BIND_SERVICE\n", text)
        for line in ("ProtectSystem=strict", "NoNewPrivileges=yes", "User=veil"):
            self.assertIn(line + "\n", text)
        self.assertRegex(text, r"ExecStartPre=\+/usr/sbin/veil-iptables install --config /etc/veil/veil.yaml")
        self.assertRegex(text, r"ExecStopPost=\+.*veil-iptables teardown --config /etc/veil/veil.yaml")


class Containerfile(unittest.TestCase):
    FILE = os.path.join(DEPLOY, "Containerfile")

    def runtime_packages(self):
        text = read(self.FILE)
        final = text[text.rindex("\nFROM "):]
        m = re.search(r"apt-get install -y --no-install-recommends((?:\s*\\\n|[^\n&])*)", final)
        self.assertIsNotNone(m)
        return set(m.group(1).replace("\\", " ").split())

    def test_runtime_stage_provides_every_library_the_binaries_link(self):
        pkgs = self.runtime_packages()
        needed = set()
        for binary in (VEILD, VEILCTL, IPTABLES):
            r = run("ldd", binary)
            self.assertEqual(r.returncode, 0, r.stderr)
            for line in r.stdout.splitlines():
                m = re.search(r"=> (/\S+)", line)
                if not m:
                    continue
                # usrmerge: a package may list /lib/... or /usr/lib/...
                real = os.path.realpath(m.group(1))
                owner = run("dpkg", "-S", real)
                if owner.returncode != 0 and real.startswith("/usr/"):
                    owner = run("dpkg", "-S", real[4:])
                self.assertEqual(owner.returncode, 0, f"no package owns {m.group(1)}")
                needed.add(owner.stdout.split(":")[0])
        # apt installs what the listed packages depend on, recursively.
        r = run("apt-cache", "depends", "--recurse", "--no-recommends", "--no-suggests", "--no-conflicts",
                "--no-breaks", "--no-replaces", "--no-enhances", "--no-pre-depends", *sorted(pkgs))
        self.assertEqual(r.returncode, 0, r.stderr)
        closure = {line.strip() for line in r.stdout.splitlines() if not line.startswith(" ")}
        closure |= {line.split(":", 1)[1].strip() for line in r.stdout.splitlines()
                    if line.strip().startswith("Depends:") and "<" not in line}
        # A sanitizer build links its runtimes; the image is a release build.
        needed = {p for p in needed if not re.fullmatch(r"lib(a|ub|l|t|hwa)san\d*", p.split(":")[0])}
        missing = {p.split(":")[0] for p in needed} - closure
        self.assertFalse(missing, f"the runtime stage of deploy/Containerfile would lack {sorted(missing)}")

    def test_runtime_packages_exist_in_debian_12(self):
        for p in sorted(self.runtime_packages()):
            r = run("apt-cache", "show", "--no-all-versions", p)
            self.assertEqual(r.returncode, 0, f"{p} is not a Debian package here")

    def test_the_build_stage_uses_the_projects_own_setup_and_installs_where_the_copy_reads(self):
        text = read(self.FILE)
        self.assertIn("scripts/setup-deps", text)
        self.assertIn("DESTDIR=/out meson install", text)
        self.assertIn("COPY --from=build /out/ /", text)
        with tempfile.TemporaryDirectory() as dest:
            r = run("meson", "install", "-C", BUILD, "--no-rebuild", "--destdir", dest, "--quiet")
            self.assertEqual(r.returncode, 0, r.stderr + r.stdout)
            installed = {os.path.relpath(os.path.join(d, f), dest) for d, _, fs in os.walk(dest) for f in fs}
        prefix = run("meson", "introspect", BUILD, "--buildoptions")
        opts = {o["name"]: o["value"] for o in json.loads(prefix.stdout)}
        p = opts["prefix"].lstrip("/")
        for rel in (f"{p}/{opts['sbindir']}/veild", f"{p}/{opts['bindir']}/veilctl", f"{p}/{opts['sbindir']}/veil-iptables"):
            self.assertIn(rel, installed)
        # The image runs `veild` and `veil-iptables` by name: /usr/sbin and /usr/bin are on PATH.
        self.assertIn("--prefix=/usr", text)


if __name__ == "__main__":
    unittest.main(verbosity=2)
