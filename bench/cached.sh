#!/usr/bin/env bash
# bench/cached.sh — the in-process cached-verification benchmarks of
# internal/verify (BenchmarkVerifyCached*) from the working tree against
# BASE_REV (default main; git archive, the working tree untouched), in
# alternating rounds (new, base, new, base, …) so that both see the same
# machine noise. Prints each round's ns/op and allocs/op, then per benchmark
# the medians and the ratio new/base of the medians.
#
#   ROUNDS=5 BENCH='VerifyCachedValid' BENCHTIME=1s bench/cached.sh
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
ROUNDS=${ROUNDS:-5}
BENCH=${BENCH:-VerifyCached}
BENCHTIME=${BENCHTIME:-1s}
BASE_REV=${BASE_REV:-main}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

(cd "$root" && go test -c -o "$tmp/new.test" ./internal/verify)
mkdir "$tmp/base"
git -C "$root" archive "$BASE_REV" | tar -x -C "$tmp/base"
(cd "$tmp/base" && go test -c -o "$tmp/base.test" ./internal/verify)
echo "new $(git -C "$root" rev-parse --short HEAD)$(git -C "$root" diff --quiet || echo ' (with local changes)'), base $(git -C "$root" rev-parse --short "$BASE_REV") ($BASE_REV), $(nproc) cores"
for r in $(seq "$ROUNDS"); do
  for v in new base; do
    echo "== round $r $v, load $(cut -d' ' -f1-3 /proc/loadavg)"
    (cd "$root/internal/verify" && "$tmp/$v.test" -test.run '^$' -test.bench "$BENCH" -test.benchtime "$BENCHTIME" -test.benchmem) |
      awk -v v="$v" '/^Benchmark/ { print v, $1, $3, $(NF-1) }' | tee -a "$tmp/all"
  done
done
echo "== medians (ns/op) and new/base"
awk '{ k=$2; a[$1" "k]=a[$1" "k]" "$3; keys[k]=1 }
  function median(s,   n, x, i, j, t) { n=split(s, x, " "); for (i=1;i<=n;i++) for (j=i+1;j<=n;j++) if (x[j]+0<x[i]+0) { t=x[i]; x[i]=x[j]; x[j]=t }; return n%2 ? x[(n+1)/2] : (x[n/2]+x[n/2+1])/2 }
  END { for (k in keys) { n=median(a["new "k]); b=median(a["base "k]); printf "%-60s new %8.1f  base %8.1f  ratio %.3f\n", k, n, b, n/b } }' "$tmp/all" | sort
