#!/bin/sh
# bench/llama/capture-prompt.sh OUT: a `command` backend program for
# bench/llama.sh. It saves the document the assessor sends on stdin
# ({"profile", "system", "user", "criteria"}: the same framed messages the
# llama backend formats with the model's chat template) to OUT, for
# grammar-probe, and answers with a fixed verdict.
set -eu
cat >"$1"
echo '{"verdict":"accept","score":0.5,"reasons":["captured"]}'
