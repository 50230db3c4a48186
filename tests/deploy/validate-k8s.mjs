// Validates Kubernetes manifests against the API schemas (kubernetes-models'
// generated validators), without a cluster: for each kustomization given,
// every resource file and every generator's files, then prints the objects
// as JSON for the Python test's cross-checks.
//
// usage: node validate-k8s.mjs DIR...   (DIR holds a kustomization.yaml)
// exit 1 with one line per problem.
import { readFileSync, existsSync, statSync } from "node:fs";
import { join, dirname } from "node:path";
import { parseAllDocuments } from "yaml";
import * as core from "kubernetes-models/v1";
import * as apps from "kubernetes-models/apps/v1";

const kinds = { "v1": core, "apps/v1": apps };
const problems = [];
const objects = [];

function load(file) {
  const docs = parseAllDocuments(readFileSync(file, "utf8"), { prettyErrors: true });
  const out = [];
  for (const d of docs) {
    if (d.errors.length) for (const e of d.errors) problems.push(`${file}: ${e.message}`);
    else if (d.contents !== null) out.push(d.toJS());
  }
  return out;
}

function validate(obj, file) {
  const group = kinds[obj.apiVersion];
  const Model = group && group[obj.kind];
  if (!Model) {
    problems.push(`${file}: ${obj.apiVersion} ${obj.kind} is not a kind this check knows`);
    return;
  }
  try {
    new Model(obj).validate();
  } catch (e) {
    problems.push(`${file}: ${obj.kind} ${obj.metadata?.name}: ${e.message}`);
  }
}

function kustomization(dir) {
  const file = join(dir, "kustomization.yaml");
  const [k] = load(file);
  if (!k || k.kind !== "Kustomization") {
    problems.push(`${file}: not a Kustomization`);
    return;
  }
  for (const r of k.resources ?? []) {
    const path = join(dir, r);
    if (existsSync(path) && statSync(path).isDirectory()) {
      kustomization(path);
      continue;
    }
    if (!existsSync(path)) {
      problems.push(`${file}: resource ${r} does not exist`);
      continue;
    }
    for (const obj of load(path)) {
      if (k.namespace && obj.kind !== "Namespace") obj.metadata = { ...obj.metadata, namespace: k.namespace };
      validate(obj, path);
      objects.push({ file: path, obj });
    }
  }
  for (const [kind, gens] of [["ConfigMap", k.configMapGenerator ?? []], ["Secret", k.secretGenerator ?? []]]) {
    for (const g of gens) {
      const data = {};
      for (const f of g.files ?? []) {
        const [key, src] = f.includes("=") ? f.split("=") : [f.split("/").pop(), f];
        data[key] = join(dir, src);
      }
      objects.push({ file, generated: kind, obj: { kind, metadata: { name: g.name, namespace: k.namespace }, files: data } });
    }
  }
}

for (const dir of process.argv.slice(2)) kustomization(dir);
for (const p of problems) console.error(p);
process.stdout.write(JSON.stringify(objects) + "\n");
process.exit(problems.length ? 1 : 0);
