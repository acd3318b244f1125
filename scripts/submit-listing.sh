#!/usr/bin/env bash
# Submits one listing as its own Job: one ConfigMap holding the listing as
# the profile, one Job made from the rendered template of deploy/base (or an
# overlay) with `generateName`, so every listing gets a new Job, and the
# ConfigMap owned by that Job, so deleting the Job (by hand, or the Job's
# ttlSecondsAfterFinished) garbage-collects the ConfigMap too.
#
# Why: `kubectl apply -k deploy/base` names its Job `shortlist-assess`; a
# second apply with another profile.json leaves that Job "unchanged" (its
# pod template cannot change) and judges nothing new. Until a runner exists,
# this is the `kubectl create` + `generateName` way.
#
# Usage:
#   bash scripts/submit-listing.sh [options] LISTING.json
#
# Options:
#   --overlay DIR     the kustomization to take the Job from (default
#                     deploy/base; any single-profile overlay: classic,
#                     ollama, your own); rendered with `kubectl kustomize`
#   --rendered FILE   take the Job from an already rendered file instead
#                     (e.g. deploy/rendered/base.yaml)
#   --namespace NS    where to create them (default: the template's)
#   --print           print the two objects as YAML and create nothing
#                     (no cluster needed; check-deploy.sh validates this)
#
# What is created (in the template's namespace, `shortlist`):
#   ConfigMap shortlist-<listing>-xxxxx   every key of the template's profile
#       ConfigMap (config.json, ...), with the key the assessor's
#       PROFILE_PATH names (profile.json, at the mount path of the volume the
#       template mounts there) replaced by LISTING.json, byte for byte;
#   Job shortlist-<listing>-yyyyy         the template's Job, its profile
#       volume pointing at that ConfigMap;
# both with generateName `shortlist-<listing>-` (<listing>: the listing's
# metadata.id, lower-cased, every run of other characters turned into `-`,
# cut so the Job name stays within 63 characters, as its pods' job-name
# label requires; a listing without a usable id gets `listing-<hash>`), the
# recommended labels with `app.kubernetes.io/instance: shortlist-<listing>`
# and the id itself in the annotation `shortlist.dev/listing-id`. Then the
# ConfigMap gets an ownerReference to the Job.
#
# The Secret, ServiceAccount and NetworkPolicy the Job uses come from
# applying deploy/base (or the overlay) once; this script checks they exist.
#
# Needs kubectl (with kustomize v5 for --overlay) and python3 with PyYAML.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)

overlay=$root/deploy/base
rendered=""
namespace=""
print=false
listing=""
usage() {
  sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'
}
while [ $# -gt 0 ]; do
  case "$1" in
    --overlay) overlay=${2:?--overlay needs a directory}; shift 2 ;;
    --rendered) rendered=${2:?--rendered needs a file}; shift 2 ;;
    --namespace) namespace=${2:?--namespace needs a name}; shift 2 ;;
    --print | --dry-run) print=true; shift ;;
    -h | --help) usage; exit 0 ;;
    -*) echo "submit-listing: unknown option $1 (see --help)" >&2; exit 2 ;;
    *)
      [ -z "$listing" ] || { echo "submit-listing: one LISTING.json at a time" >&2; exit 2; }
      listing=$1; shift ;;
  esac
done
[ -n "$listing" ] || { echo "usage: $0 [--print] [--overlay DIR | --rendered FILE] [--namespace NS] LISTING.json" >&2; exit 2; }
[ -f "$listing" ] || { echo "submit-listing: $listing: no such file" >&2; exit 2; }

kubectl=${KUBECTL:-kubectl}
python=${PYTHON:-python3}
"$python" -c 'import yaml' 2>/dev/null || {
  echo "submit-listing: $python has no PyYAML (install python3-yaml, or set PYTHON)" >&2
  exit 2
}

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
if [ -n "$rendered" ]; then
  cp "$rendered" "$work/template.yaml"
else
  "$kubectl" kustomize "$overlay" >"$work/template.yaml"
fi

# Builds $work/configmap.json and $work/job.json (the Job's ConfigMap name
# is __CONFIGMAP__ until the ConfigMap exists) and prints the namespace and
# the names the live run needs.
"$python" - "$listing" "$work" "$namespace" <<'PY'
import hashlib, json, pathlib, re, sys, yaml

listing_path, work, namespace_arg = sys.argv[1], pathlib.Path(sys.argv[2]), sys.argv[3]

def die(message):
    print(f"submit-listing: {message}", file=sys.stderr)
    sys.exit(2)

raw = pathlib.Path(listing_path).read_bytes()
try:
    listing = json.loads(raw)
except ValueError as e:
    die(f"{listing_path}: not JSON: {e}")
if not isinstance(listing, dict):
    die(f"{listing_path}: expected a JSON object (a profile, docs/contract.md)")
if not isinstance(listing.get("text"), str) or not listing["text"].strip():
    die(f'{listing_path}: field "text" is required (a non-empty string)')
meta = listing.get("metadata") if isinstance(listing.get("metadata"), dict) else {}
listing_id = meta.get("id")
if isinstance(listing_id, bool) or not isinstance(listing_id, (str, int)):
    listing_id = None
listing_id = None if listing_id is None else str(listing_id)

# DNS-1123: lower-case alphanumerics and '-', starting and ending with an
# alphanumeric. "shortlist-" + slug + "-" + 5 random characters <= 63.
PREFIX = "shortlist-"
slug = re.sub(r"[^a-z0-9]+", "-", (listing_id or "").lower()).strip("-")
slug = slug[: 63 - 5 - 1 - len(PREFIX)].rstrip("-")
if not slug:
    digest = hashlib.sha256((listing_id or "").encode() if listing_id else raw).hexdigest()
    slug = f"listing-{digest[:12]}"
generate_name = f"{PREFIX}{slug}-"
instance = f"{PREFIX}{slug}"

docs = [d for d in yaml.safe_load_all((work / "template.yaml").read_text()) if d]
jobs = [d for d in docs if d.get("kind") == "Job" and d["metadata"]["name"] != "shortlist-model-loader"]
if len(jobs) != 1:
    die(f"the template has {len(jobs)} Jobs; expected one")
job = jobs[0]
spec = job["spec"]
if spec.get("completionMode") == "Indexed":
    die("the template is an Indexed Job (the batch overlay): it judges a JSONL of many profiles; submit single listings from deploy/base or a single-profile overlay")
pod = spec["template"]["spec"]
assessor = next((c for c in pod.get("containers", []) if c["name"] == "assessor"), None)
if assessor is None:
    die("the template's pod has no container named assessor")
env = {e["name"]: e.get("value") for e in assessor.get("env", [])}
profile_path = env.get("PROFILE_PATH")
if not profile_path:
    die("the assessor container has no PROFILE_PATH")
# The volume mounted where PROFILE_PATH lives, and the key it shows there.
mounts = sorted(assessor.get("volumeMounts", []), key=lambda m: -len(m["mountPath"]))
mount = next((m for m in mounts if profile_path.startswith(m["mountPath"].rstrip("/") + "/")), None)
if mount is None:
    die(f"PROFILE_PATH={profile_path} is on no volume the assessor mounts")
if "subPath" in mount:
    die(f"the profile volume is mounted with subPath ({mount['mountPath']}); expected the whole ConfigMap")
volume = next(v for v in pod["volumes"] if v["name"] == mount["name"])
if "configMap" not in volume:
    die(f"PROFILE_PATH={profile_path} is on volume {volume['name']}, which is not a ConfigMap")
relative = profile_path[len(mount["mountPath"].rstrip("/")) + 1:]
items = volume["configMap"].get("items")
key = next((i["key"] for i in items if i.get("path") == relative), None) if items else relative
if key is None:
    die(f"the ConfigMap volume {volume['name']} shows no key at {relative}")
template_cm_name = volume["configMap"]["name"]
template_cm = next((d for d in docs if d.get("kind") == "ConfigMap" and d["metadata"]["name"] == template_cm_name), None)
namespace = namespace_arg or job["metadata"].get("namespace") or "default"

labels = dict(job["metadata"].get("labels", {}))
labels["app.kubernetes.io/instance"] = instance
labels["app.kubernetes.io/managed-by"] = "submit-listing"
annotations = {"shortlist.dev/listing-id": listing_id if listing_id is not None else "", "shortlist.dev/listing-file": pathlib.Path(listing_path).name}

data = dict((template_cm or {}).get("data", {}))
try:
    data[key] = raw.decode("utf-8")
except UnicodeDecodeError:
    die(f"{listing_path}: not UTF-8")
configmap = {
    "apiVersion": "v1",
    "kind": "ConfigMap",
    "metadata": {"generateName": generate_name, "namespace": namespace, "labels": labels, "annotations": annotations},
    "data": data,
}
if (template_cm or {}).get("binaryData"):
    configmap["binaryData"] = template_cm["binaryData"]

job["metadata"] = {"generateName": generate_name, "namespace": namespace, "labels": labels, "annotations": annotations}
template_meta = spec["template"].setdefault("metadata", {})
template_meta["labels"] = {**template_meta.get("labels", {}), **labels}
for v in pod["volumes"]:
    if "configMap" in v and v["configMap"]["name"] == template_cm_name:
        v["configMap"]["name"] = "__CONFIGMAP__"

(work / "configmap.json").write_text(json.dumps(configmap, ensure_ascii=False, indent=2))
(work / "job.json").write_text(json.dumps(job, ensure_ascii=False, indent=2))
secrets = sorted({v["secret"]["secretName"] for v in pod["volumes"] if "secret" in v})
(work / "needs").write_text("\n".join([f"serviceaccount/{pod.get('serviceAccountName', 'default')}"] + [f"secret/{s}" for s in secrets]) + "\n")
(work / "namespace").write_text(namespace)
(work / "generate-name").write_text(generate_name)
PY

ns=$(cat "$work/namespace")
generate_name=$(cat "$work/generate-name")

if $print; then
  # What would be sent. The API server appends 5 random characters to
  # generateName; `xxxxx` stands for the ConfigMap's here.
  "$python" - "$work" <<'PY'
import json, pathlib, sys, yaml
work = pathlib.Path(sys.argv[1])
configmap = json.loads((work / "configmap.json").read_text())
name = configmap["metadata"]["generateName"] + "xxxxx"
job = json.loads((work / "job.json").read_text().replace("__CONFIGMAP__", name))
print("# scripts/submit-listing.sh --print: created in this order; the ConfigMap's")
print("# name (generateName + 5 random characters, here xxxxx) goes into the Job,")
print("# then the ConfigMap gets an ownerReference to the Job.")
print(yaml.safe_dump_all([configmap, job], sort_keys=False, allow_unicode=True), end="")
PY
  exit 0
fi

# Live: what the Job needs must exist already (applied with deploy/base).
while read -r needed; do
  "$kubectl" -n "$ns" get "$needed" -o name >/dev/null 2>&1 || {
    echo "submit-listing: $needed is missing in namespace $ns; apply deploy/storage and deploy/base (or your overlay) once first" >&2
    exit 1
  }
done <"$work/needs"

configmap=$("$kubectl" create -f "$work/configmap.json" -o jsonpath='{.metadata.name}')
sed "s/__CONFIGMAP__/$configmap/" "$work/job.json" >"$work/job-final.json"
if ! created=$("$kubectl" create -f "$work/job-final.json" -o jsonpath='{.metadata.name} {.metadata.uid}'); then
  "$kubectl" -n "$ns" delete configmap "$configmap" --ignore-not-found >/dev/null
  echo "submit-listing: the Job was not created; removed configmap/$configmap" >&2
  exit 1
fi
job=${created% *}
uid=${created#* }
owner=$(printf '{"metadata":{"ownerReferences":[{"apiVersion":"batch/v1","kind":"Job","name":"%s","uid":"%s"}]}}' "$job" "$uid")
if ! "$kubectl" -n "$ns" patch configmap "$configmap" --type merge -p "$owner" >/dev/null; then
  echo "submit-listing: job/$job created, but configmap/$configmap has no owner: delete it with the Job" >&2
  exit 1
fi
echo "job/$job (configmap/$configmap, owned by it; generateName $generate_name)"
echo "watch: kubectl -n $ns wait --for=condition=Complete job/$job --timeout=15m"
