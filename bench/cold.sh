#!/usr/bin/env bash
# bench/cold.sh — bench/cold (verification cache misses on SQLite and the
# memory per cached token, in-process) from the working tree, and with
# BASE_REV set, the same program built over that revision's tokend too
# (git archive, the working tree untouched), run in turn A, B, A, B … for
# ROUNDS rounds, so that both see the same machine. Arguments go to
# bench/cold; the database and secrets are bench/seed's, for example:
#
#   go run ./bench/seed --tokens 1000 --bulk 1010000
#   BASE_REV=main ROUNDS=3 bench/cold.sh --samples 5000 --mem-tokens 1000000
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

(cd "$root" && go build -o "$tmp/cold" ./bench/cold)
echo "commit $(git -C "$root" rev-parse --short HEAD)$(git -C "$root" diff --quiet || echo ' (with local changes)'), $(nproc) cores"
runs=("$tmp/cold")
if [[ -n "${BASE_REV:-}" ]]; then
  mkdir "$tmp/base"
  git -C "$root" archive "$BASE_REV" | tar -x -C "$tmp/base"
  # The measuring program is this tree's, over the base's engine.
  cp "$root/bench/cold/main.go" "$tmp/base/bench/cold/main.go"
  (cd "$tmp/base" && go build -o "$tmp/cold-base" ./bench/cold)
  echo "base $(git -C "$root" rev-parse --short "$BASE_REV") ($BASE_REV)"
  runs+=("$tmp/cold-base")
fi
for r in $(seq "${ROUNDS:-1}"); do
  for bin in "${runs[@]}"; do
    echo "== round $r: $(basename "$bin"), load $(cut -d' ' -f1-3 /proc/loadavg)"
    "$bin" "$@"
  done
done
