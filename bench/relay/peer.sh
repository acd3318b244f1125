#!/usr/bin/env bash
# bench/relay/peer.sh: the shell pipeline the relay is compared with.
#
#   bash peer.sh DIR URL
#
# inotifywait reports every file moved into (or closed after writing in) DIR;
# for each result name (*.json, not a hidden temp file) curl POSTs the file
# as it is to URL. The name filter is the relay's own (temp names start with a
# dot), so neither side posts an assessor's half-written `.name.tmp`.
# inotifywait prints "Watches established." on stderr when it is ready.
set -uo pipefail
dir=$1 url=$2
inotifywait -m -e moved_to,close_write --format '%w%f' "$dir" |
    while IFS= read -r f; do
        case ${f##*/} in
            .*) continue ;;
            *.json) ;;
            *) continue ;;
        esac
        curl -sS -o /dev/null -H 'content-type: application/json' --data-binary @"$f" "$url" || true
    done
