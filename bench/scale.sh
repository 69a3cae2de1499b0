#!/usr/bin/env bash
# bench/scale.sh — tokend at scale on PostgreSQL: builds tokend and
# bench/scale from the working tree and runs the measurement (see the
# comment at the top of bench/scale/main.go). Arguments go to bench/scale,
# for example:
#
#   bench/scale.sh                                  # 1,000,000 tokens on the local server
#   bench/scale.sh --tokens 50000 --samples 5000    # a quick look
#   bench/scale.sh --url 'postgres://user:pw@db:5432/postgres' --keep
#   BASE_REV=main bench/scale.sh --bulk              # cache misses against main's tokend too
#
# With BASE_REV set, tokend is also built from that revision (git archive,
# the working tree untouched) and passed as --tokend-base: the sequential
# cache misses are timed on both in alternating rounds of the same run.
#
# The run creates its own database on the server (the role in --url must
# be allowed to create databases) and drops it at the end unless --keep.
# Needs: go, and a PostgreSQL server (default 127.0.0.1:5432, user postgres).
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

(cd "$root" && go build -o "$tmp/tokend" ./cmd/tokend && go build -o "$tmp/scale" ./bench/scale)
base=()
if [[ -n "${BASE_REV:-}" ]]; then
  mkdir "$tmp/base"
  git -C "$root" archive "$BASE_REV" | tar -x -C "$tmp/base"
  (cd "$tmp/base" && go build -o "$tmp/tokend-base" ./cmd/tokend)
  base=(--tokend-base "$tmp/tokend-base")
  echo "base $(git -C "$root" rev-parse --short "$BASE_REV") ($BASE_REV)"
fi
echo "commit $(git -C "$root" rev-parse --short HEAD)$(git -C "$root" diff --quiet || echo ' (with local changes)'), $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"
"$tmp/scale" --tokend "$tmp/tokend" "${base[@]}" "$@"
echo "load at the end $(cut -d' ' -f1-3 /proc/loadavg)"
