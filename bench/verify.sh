#!/usr/bin/env bash
# bench/verify.sh — POST /v1/verify throughput of tokend against the floor
# (bench/floor: bare net/http + JSON + HMAC + map lookup), measured in
# alternating rounds (tokend, floor, tokend, floor, …) so that both see the
# same machine noise; with BASE_REV, an older tokend joins the rotation.
# Prints req/s, wrk's p50/p99 and the server's CPU time per request (user +
# system, from /proc) per round, the medians, and the ratios tokend/floor of
# the medians. tokend is built from the working tree. CPU per request is the
# steadier figure on a shared machine: other work slows a round's req/s
# much more than it changes what one request costs.
#
# Needs: go, wrk (apt-get install wrk), curl, jq. Traffic goes to 127.0.0.1
# only. Knobs (environment):
#   ROUNDS=5 DURATION=10s THREADS=2 CONNS=32
#   PIN=1          pin the servers to CPU SERVER_CPUS with GOMAXPROCS=1 each
#                  and wrk to WRK_CPUS (taskset)
#   SERVER_CPUS=0 WRK_CPUS=1
#   PORT_TOKEND=27180 PORT_FLOOR=27190 PORT_BASE=27200
#   BASE_REV=<git rev>  also build tokend at that revision and measure it as
#                  "base" in the same rotation (tokend, base, floor, …):
#                  before/after figures under the same noise
set -euo pipefail

ROUNDS=${ROUNDS:-5}
DURATION=${DURATION:-10s}
THREADS=${THREADS:-2}
CONNS=${CONNS:-32}
PIN=${PIN:-0}
SERVER_CPUS=${SERVER_CPUS:-0}
WRK_CPUS=${WRK_CPUS:-1}
PORT_TOKEND=${PORT_TOKEND:-27180}
PORT_FLOOR=${PORT_FLOOR:-27190}
PORT_BASE=${PORT_BASE:-27200}
BASE_REV=${BASE_REV:-}
[ "$ROUNDS" -ge 1 ] && [ "$ROUNDS" -le 20 ] || { echo "ROUNDS must be 1..20" >&2; exit 2; }

for c in go wrk curl jq; do
	command -v "$c" >/dev/null || { echo "verify.sh: $c is required" >&2; exit 2; }
done

root=$(cd "$(dirname "$0")/.." && pwd)
tmp=$(mktemp -d)
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
	rm -rf "$tmp"
}
trap cleanup EXIT INT TERM

srv=()
cli=()
if [ "$PIN" = 1 ]; then
	srv=(env GOMAXPROCS=1 taskset -c "$SERVER_CPUS")
	cli=(taskset -c "$WRK_CPUS")
fi

echo "load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "building tokend and the floor into $tmp"
(cd "$root" && go build -o "$tmp/tokend" ./cmd/tokend && go build -o "$tmp/floor" ./bench/floor)
if [ -n "$BASE_REV" ]; then
	echo "building tokend at $BASE_REV as base"
	mkdir "$tmp/base-src"
	git -C "$root" archive "$BASE_REV" | tar -x -C "$tmp/base-src"
	(cd "$tmp/base-src" && go build -o "$tmp/tokend-base" ./cmd/tokend)
fi

# start_tokend NAME BINARY PORT: starts a tokend, reads the bootstrap admin
# token from its banner, creates an app and one token through the REST API,
# appends the token's secret to $tmp/secrets and writes the wrk script
# $tmp/NAME.lua that verifies it.
start_tokend() {
	local name=$1 bin=$2 port=$3 base="http://127.0.0.1:$3"
	"${srv[@]}" "$bin" serve --addr "127.0.0.1:$port" --data-dir "$tmp/data-$name" \
		--log-level warn --failure-limit 0 >"$tmp/$name.out" 2>"$tmp/$name.err" &
	pids+=($!)
	pid_of[$name]=$!
	# The banner, not /healthz, says that this tokend is up: another
	# program may already hold the port.
	for _ in $(seq 100); do grep -q 'Press Ctrl+C' "$tmp/$name.out" && break; sleep 0.1; done
	grep -q 'Press Ctrl+C' "$tmp/$name.out" || { echo "verify.sh: $name did not start" >&2; cat "$tmp/$name.err" >&2; exit 1; }
	local admin app tok
	admin=$(grep -Eo '^    [a-z0-9_]+_[0-9A-Za-z]+_[0-9A-Za-z]+$' "$tmp/$name.out" | head -1 | tr -d ' ')
	[ -n "$admin" ] || { echo "verify.sh: no bootstrap token in $name's banner" >&2; exit 1; }
	app=$(curl -fsS -H "Authorization: Bearer $admin" -H 'Content-Type: application/json' \
		-d '{"name":"bench"}' "$base/v1/apps" | jq -r .id)
	tok=$(curl -fsS -H "Authorization: Bearer $admin" -H 'Content-Type: application/json' \
		-d "{\"app_id\":\"$app\",\"name\":\"bench\",\"expires_in\":\"unlimited\"}" "$base/v1/tokens" | jq -r .secret)
	echo "$tok" >>"$tmp/secrets"
	write_lua "$name" "$tok"
	port_of[$name]=$port
}

# write_lua NAME SECRET: the wrk script POSTing the verify question.
write_lua() {
	local body
	body=$(jq -cn --arg t "$2" '{token: $t, permissions: ["read"], ip: "203.0.113.7"}')
	printf 'wrk.method = "POST"\nwrk.body = %s\nwrk.headers["Content-Type"] = "application/json"\n' "'$body'" >"$tmp/$1.lua"
	bodies[$1]=$body
}

declare -A port_of bodies pid_of
servers=(tokend)
start_tokend tokend "$tmp/tokend" "$PORT_TOKEND"
if [ -n "$BASE_REV" ]; then
	servers+=(base)
	start_tokend base "$tmp/tokend-base" "$PORT_BASE"
fi

"${srv[@]}" "$tmp/floor" --addr "127.0.0.1:$PORT_FLOOR" --tokens 1000 --secrets-in "$tmp/secrets" \
	--secrets-out "$tmp/floor-secrets" >"$tmp/floor.out" 2>&1 &
pids+=($!)
pid_of[floor]=$!
for _ in $(seq 100); do grep -q listening "$tmp/floor.out" && break; sleep 0.1; done
grep -q listening "$tmp/floor.out" || { echo "verify.sh: the floor did not start" >&2; cat "$tmp/floor.out" >&2; exit 1; }
# The floor is asked about tokend's token.
cp "$tmp/tokend.lua" "$tmp/floor.lua"
bodies[floor]=${bodies[tokend]}
port_of[floor]=$PORT_FLOOR
servers+=(floor)

for name in "${servers[@]}"; do
	got=$(curl -fsS -H 'Content-Type: application/json' -d "${bodies[$name]}" "http://127.0.0.1:${port_of[$name]}/v1/verify" | jq -r .code)
	[ "$got" = VALID ] || { echo "verify.sh: $name answered $got, not VALID" >&2; exit 1; }
done

# ms VALUE: wrk's latency (e.g. 812.00us, 1.20ms, 1.01s) in milliseconds.
ms() {
	awk -v v="$1" 'BEGIN {
		n = v + 0; u = v; sub(/^[0-9.]+/, "", u)
		if (u == "us") n /= 1000; else if (u == "s") n *= 1000; else if (u == "m") n *= 60000
		printf "%.3f", n }'
}
# ticks PID: the CPU time (user + system) PID has used, in clock ticks.
ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
hz=$(getconf CLK_TCK)
median() { sort -g | awk '{a[NR] = $1} END { if (NR % 2) print a[(NR + 1) / 2]; else printf "%.3f\n", (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }

declare -A rps p50 p99 cpu
printf '%-6s %-7s %12s %10s %10s %12s\n' round server req/s p50_ms p99_ms cpu_us/req
for r in $(seq "$ROUNDS"); do
	for name in "${servers[@]}"; do
		port=${port_of[$name]}
		t0=$(ticks "${pid_of[$name]}")
		out=$("${cli[@]}" wrk -t "$THREADS" -c "$CONNS" -d "$DURATION" --timeout 5s --latency \
			-s "$tmp/$name.lua" "http://127.0.0.1:$port/v1/verify")
		if grep -q 'Non-2xx' <<<"$out"; then
			echo "verify.sh: $name gave non-2xx answers:" >&2
			echo "$out" >&2
			exit 1
		fi
		t1=$(ticks "${pid_of[$name]}")
		q=$(awk '/^Requests\/sec/ {print $2}' <<<"$out")
		c=$(awk -v n="$(awk '/ requests in / {print $1}' <<<"$out")" -v d=$((t1 - t0)) -v hz="$hz" \
			'BEGIN { printf "%.2f", d * 1e6 / hz / n }')
		l50=$(ms "$(awk '$1 == "50%" {print $2}' <<<"$out")")
		l99=$(ms "$(awk '$1 == "99%" {print $2}' <<<"$out")")
		rps[$name]+="$q "
		p50[$name]+="$l50 "
		p99[$name]+="$l99 "
		cpu[$name]+="$c "
		printf '%-6s %-7s %12s %10s %10s %12s\n' "$r" "$name" "$q" "$l50" "$l99" "$c"
	done
done

echo
for name in "${servers[@]}"; do
	m=$(tr ' ' '\n' <<<"${rps[$name]}" | grep . | median)
	m50=$(tr ' ' '\n' <<<"${p50[$name]}" | grep . | median)
	m99=$(tr ' ' '\n' <<<"${p99[$name]}" | grep . | median)
	mc=$(tr ' ' '\n' <<<"${cpu[$name]}" | grep . | median)
	printf 'median %-7s %12s req/s   p50 %s ms   p99 %s ms   cpu %s us/req\n' "$name" "$m" "$m50" "$m99" "$mc"
	eval "med_$name=$m cpu_$name=$mc"
done
# The CPU ratio is floor/tokend: the share of the floor's req/s that
# tokend's cost per request allows when the CPU is the limit.
awk -v a="$med_tokend" -v b="$med_floor" -v c="$cpu_tokend" -v f="$cpu_floor" \
	'BEGIN { printf "ratio tokend/floor = %.3f req/s (target >= 0.90); by CPU per request %.3f\n", a / b, f / c }'
if [ -n "$BASE_REV" ]; then
	awk -v a="$med_base" -v b="$med_floor" -v c="$cpu_base" -v f="$cpu_floor" -v r="$BASE_REV" \
		'BEGIN { printf "ratio base(%s)/floor = %.3f req/s; by CPU per request %.3f\n", r, a / b, f / c }'
fi
echo "load average at end: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "settings: rounds=$ROUNDS duration=$DURATION threads=$THREADS conns=$CONNS pin=$PIN (server cpus $SERVER_CPUS, wrk cpus $WRK_CPUS)"
