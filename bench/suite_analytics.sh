#!/bin/sh
# bench/suite_analytics.sh <build-dir> <results-dir> - change-to-watcher
# latency of the kernel analytics port against Redis pub/sub (Debian's
# redis-server, started here on a free loopback port, no persistence)
# delivering the same message to the same number of subscribers.
#
# bench/bench_analytics.c: one publisher, W watchers (W = 1 and 1000),
# messages one after the other; the latency of a message to a watcher is
# from just before the publisher sends it to the watcher's read that
# returns it.  Both servers get the same client in the same run
# (`bench_analytics both`): each message goes to one server and then to
# the other, alternating which goes first, so both see the same load at
# the same moments (back-to-back runs on a shared 2-core machine differed
# by 2x and more in either direction: the load swings within a second).
# BENCH_REPS such runs; the ratio of p99s is taken within each run and
# the median is reported with its range.  This suite starts its own virgod (threads = 2, no variables
# file) so the shared one's other suites do not disturb it; it takes
# BENCH_VIRGOD_EXTRA too (e.g. "cpu_affinity = no").
# Writes analytics.md.
set -u
B=$1
R=$2
REPS=${BENCH_REPS:-5}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
. "$ROOT/bench/ports.sh"
W=$(mktemp -d "${TMPDIR:-/tmp}/virgo-bench-an-XXXXXX")
PIDS=""
trap 'for p in $PIDS; do kill $p 2>/dev/null; done; for p in $PIDS; do wait $p 2>/dev/null; done; rm -rf "$W"' EXIT
TOOL=$B/bench/bench_analytics
[ -x "$TOOL" ] || ${CC:-cc} -O2 -Wall -Wextra -Werror -D_GNU_SOURCE -o "$TOOL" "$ROOT/bench/bench_analytics.c" || exit 1
command -v redis-server >/dev/null || { echo "redis-server not found (scripts/deps.sh --bench)" >&2; exit 1; }

RP=16379
while ! port_free $RP; do RP=$((RP + 1)); done
redis-server --port $RP --bind 127.0.0.1 --save '' --appendonly no --maxclients 4000 \
	--loglevel warning >"$W/redis.log" 2>&1 &
RPID=$!
PIDS="$PIDS $!"
OFF=1400
# every service's port: another node may listen on any, and those in the
# ephemeral range (40000+, 50000+, 60000+) may be a client's TIME-WAIT
ports_free() {
	for b in 64000 30000 20000 11211 10000; do port_free $((b + $1)) || return 1; done
	for b in 60000 50000 40000; do port_unused $((b + $1)) || return 1; done
}
while ! ports_free $OFF; do OFF=$((OFF - 1)); done
cat >"$W/node.conf" <<CONF
port_offset = $OFF
threads = 2
max_connections = 4000
analytics_conf =
pidfile = $W/virgod.pid
${BENCH_VIRGOD_EXTRA:-}
CONF
"$B/virgod" --config "$W/node.conf" >"$W/virgod.log" 2>&1 &
VPID=$!
PIDS="$PIDS $!"
wait_port $RP 5 || { echo "redis-server did not start" >&2; cat "$W/redis.log" >&2; exit 1; }
wait_port $((64000 + OFF)) 5 || { echo "virgod did not start" >&2; cat "$W/virgod.log" >&2; exit 1; }

median() { sort -g | awk '{a[NR] = $1} END {if (NR == 0) print 0; else print a[int((NR + 1) / 2)]}'; }
rows=""
for w in 1 1000; do
	msgs=3000
	[ $w -gt 1 ] && msgs=100
	: >"$W/pairs.$w"
	i=0
	while [ $i -lt "$REPS" ]; do
		vr=$(BENCH_AN_PIDS="$VPID $RPID" "$TOOL" both $((64000 + OFF)) $RP $w $msgs) || exit 1
		echo "$vr" >>"$W/pairs.$w"
		echo "analytics W=$w: virgo then redis p50/p99/max us samples, then cpu us/msg virgo redis: $vr" >&2
		i=$((i + 1))
	done
	# columns: v50 v99 vmax vn r50 r99 rmax rn vcpu rcpu
	vcpu=$(awk '{print $9}' "$W/pairs.$w" | median)
	rcpu=$(awk '{print $10}' "$W/pairs.$w" | median)
	v50=$(awk '{print $1}' "$W/pairs.$w" | median)
	v99=$(awk '{print $2}' "$W/pairs.$w" | median)
	r50=$(awk '{print $5}' "$W/pairs.$w" | median)
	r99=$(awk '{print $6}' "$W/pairs.$w" | median)
	ratio=$(awk '$6 > 0 {printf "%.4f\n", $2 / $6}' "$W/pairs.$w" | sort -g |
		awk '{r[NR] = $1} END {printf "%.2f (%.2f..%.2f)", r[int((NR + 1) / 2)], r[1], r[NR]}')
	rows="$rows| $w | $msgs | $v50 | $r50 | $v99 | $r99 | $ratio | $vcpu | $rcpu |
"
done
{
	echo "## analytics: change-to-watcher latency vs Redis pub/sub"
	echo
	echo "One publisher, W watchers (subscribers), messages one at a time; µs from"
	echo "just before the publish to each watcher's read that returns it"
	echo "(bench/bench_analytics.c). Each message goes to both servers in turn"
	echo "within one run; medians of $REPS runs; the p99 ratio is virgod / redis"
	echo "within each run (median, range). Target: <= 1.0. CPU: each server's"
	echo "run time (all threads, /proc schedstat) per message over the messages"
	echo "of a run, median of the runs, µs."
	echo
	echo "| watchers | messages | virgod p50 | redis p50 | virgod p99 | redis p99 | p99 ratio | virgod CPU/msg | redis CPU/msg |"
	echo "|---|---|---|---|---|---|---|---|---|"
	printf "%s" "$rows"
} >"$R/analytics.md"
cat "$R/analytics.md" >&2
