#!/usr/bin/env bash
# bench/instances.sh — many tokend instances on one PostgreSQL database:
# builds tokend and bench/instances from the working tree and measures how
# soon a change made through one instance is obeyed by the others, in both
# --invalidation modes (see the comment at the top of
# bench/instances/main.go). Arguments go to bench/instances, for example:
#
#   bench/instances.sh                          # 20 instances, 4 rounds (listen, poll, listen, poll)
#   bench/instances.sh --instances 5 --rounds 2 # a quick look
#
# The run creates its own database on the server (the role in --url must
# be allowed to create databases) and drops it at the end unless --keep.
# Needs: go, and a PostgreSQL server (default 127.0.0.1:5432, user postgres).
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

(cd "$root" && go build -o "$tmp/tokend" ./cmd/tokend && go build -o "$tmp/instances" ./bench/instances)
echo "commit $(git -C "$root" rev-parse --short HEAD)$(git -C "$root" diff --quiet || echo ' (with local changes)'), $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"
"$tmp/instances" --tokend "$tmp/tokend" "$@"
echo "load at the end $(cut -d' ' -f1-3 /proc/loadavg)"
