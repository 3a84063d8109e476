#!/bin/sh
# bench/suite_hostile.sh <build-dir> <results-dir> - a well-behaved
# client's latency on the memcached port while hostile clients attack it,
# against memcached -t 2 under the same attack.  bench/hostile (one
# process) opens HOSTILE_IDLE idle connections, HOSTILE_SLOW slowloris
# clients (a never-finished get line, a byte every 2-4 s), HOSTILE_POUR
# clients pouring random bytes as fast as the server reads them and a
# connect/close flood of HOSTILE_FLOOD per second, and times a good
# client's set/get requests (one at a time, at most one per 500 µs) for
# HOSTILE_SECS seconds.  Each run gets a fresh server (memcached -t 2
# -m 64 -c 8192, or a virgod with threads = 2, mem_limit = 64M and
# max_connections = 8192), back to back (alternating which goes first),
# for HOSTILE_PAIRS pairs.  Ratios virgod/memcached per pair (median, min-max)
# of the good client's p50 and p99 (<= 1 better), its requests completed
# (>= 1 better) and the server's resident-memory growth from before the
# attack to its peak.  Writes hostile.md.  Stops what it starts.
set -u
B=$1
R=$2
W=$(mktemp -d "${TMPDIR:-/tmp}/virgo-bench-hostile-XXXXXX")
SPID=""
trap '[ -n "$SPID" ] && kill $SPID 2>/dev/null; wait 2>/dev/null; rm -rf "$W"' EXIT

. "$(dirname "$0")/ports.sh"
SECS=${HOSTILE_SECS:-8}
PAIRS=${HOSTILE_PAIRS:-5}
IDLE=${HOSTILE_IDLE:-2000}
SLOW=${HOSTILE_SLOW:-200}
POUR=${HOSTILE_POUR:-4}
FLOOD=${HOSTILE_FLOOD:-500}

# 2,200+ attack connections plus the flood's: raise the descriptor limit
# (the servers inherit it)
need=$((IDLE + SLOW + POUR + 2048))
if [ "$(ulimit -n)" != unlimited ] && [ "$(ulimit -n)" -lt $need ]; then
	ulimit -n $need 2>/dev/null || ulimit -n "$(ulimit -Hn)" || true
fi
if [ "$(ulimit -n)" != unlimited ] && [ "$(ulimit -n)" -lt $need ]; then
	echo "hostile: open-file limit $(ulimit -n) < $need; lower HOSTILE_IDLE" >&2
	exit 1
fi

# (make bench-bins builds it; this is for a tree built without them)
HOSTILE=$B/bench/hostile
if [ ! -x "$HOSTILE" ]; then
	HOSTILE=$W/hostile
	${CC:-cc} -O2 -Wall -Wextra -Werror -D_GNU_SOURCE -o "$HOSTILE" "$(dirname "$0")/hostile.c" \
		-lpthread || exit 1
fi

pick_ports 24211 1300
printf 'node_id = 1\nport_offset = %d\nthreads = 2\nmem_limit = 64M\nmax_value = 1M\nmax_connections = 8192\nlog_level = warn\n%s\n' \
	$OFF "${BENCH_VIRGOD_EXTRA:-}" >"$W/v.conf"

# run <mc|vd>: a fresh server, the attack, the result line into $W/<side>
run() {
	if [ "$1" = mc ]; then
		# memcached logs a getpeername error per flood connection
		memcached $MC_USER -l 127.0.0.1 -p $MCP -U 0 -t 2 -m 64 -c 8192 >/dev/null 2>&1 &
		SPID=$!
		port=$MCP
	else
		"$B/virgod" --config "$W/v.conf" >"$W/v.log" 2>&1 &
		SPID=$!
		port=$VDP
	fi
	wait_port $port 5 || { echo "hostile: $1 did not start" >&2; cat "$W/v.log" >&2; exit 1; }
	line=$("$HOSTILE" -p $port -P $SPID -d "$SECS" -N "$IDLE" -M "$SLOW" -K "$POUR" -F "$FLOOD")
	[ "$1" = vd ] && echo "$1 log bytes: $(wc -c <"$W/v.log")" >&2
	kill $SPID 2>/dev/null
	wait $SPID 2>/dev/null
	SPID=""
	echo "$1 $line" >&2
	[ -n "$line" ] || { echo "hostile: no result against $1" >&2; exit 1; }
	echo "$line" >>"$W/$1"
}

# alternating which goes first, so a slow patch of the shared VM or a
# warming cache does not always hit the same side
for i in $(seq "$PAIRS"); do
	if [ $((i % 2)) -eq 1 ]; then
		run mc
		run vd
	else
		run vd
		run mc
	fi
done

# field <file> <name>: that field of every line
field() { sed -n "s/.*\\b$2=\\([^ ]*\\).*/\\1/p" "$1"; }
# ratio_of <mc values> <vd values>: "median_mc median_vd ratio_median ratio_min ratio_max"
ratio_of() {
	paste "$1" "$2" | awk '
	function med(a, n,   i, j, t) {
		for (i = 2; i <= n; i++) for (j = i; j > 1 && a[j - 1] > a[j]; j--) { t = a[j]; a[j] = a[j - 1]; a[j - 1] = t }
		return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
	}
	{ n++; m[n] = $1; v[n] = $2; r[n] = $1 > 0 ? $2 / $1 : 0
	  if (n == 1 || r[n] < lo) lo = r[n]; if (n == 1 || r[n] > hi) hi = r[n] }
	END { printf "%s %s %.2f %.2f %.2f\n", med(m, n), med(v, n), med(r, n), lo, hi }'
}
for s in mc vd; do
	field "$W/$s" p50_us >"$W/$s.p50"
	field "$W/$s" p99_us >"$W/$s.p99"
	field "$W/$s" count >"$W/$s.count"
	field "$W/$s" errors >"$W/$s.err"
	paste "$W/$s" /dev/null | awk '{
		for (i = 1; i <= NF; i++) { split($i, kv, "="); f[kv[1]] = kv[2] }
		printf "%.1f\n", (f["rss_peak_kb"] - f["rss_before_kb"]) / 1024 }' >"$W/$s.rss"
	paste "$W/$s" /dev/null | awk '{
		for (i = 1; i <= NF; i++) { split($i, kv, "="); f[kv[1]] = kv[2] }
		printf "%.1f\n", f["poured_mb"] }' >"$W/$s.pour"
	field "$W/$s" server_cpu_ms >"$W/$s.cpu"
done

row() { # label file-suffix better
	set -- "$1" "$2" "$3" $(ratio_of "$W/mc.$2" "$W/vd.$2")
	echo "| $1 | $4 | $5 | **$6** ($7-$8) | $3 |"
}
{
	echo "### memcached port under hostile clients"
	echo
	echo "$IDLE idle connections, $SLOW slowloris clients (a byte of an unfinished"
	echo "\`get\` line every 2-4 s), $POUR clients pouring random bytes as fast as the server"
	echo "reads them, and a connect/close flood of $FLOOD/s, all from \`bench/hostile\`, while"
	echo "a good client sends set/get requests one at a time (at most one per 500 µs) for"
	echo "$SECS s.  Fresh servers each run: memcached -t 2 -m 64 -c 8192 and virgod with"
	echo "threads = 2, mem_limit = 64M, max_connections = 8192.  Medians over $PAIRS"
	echo "back-to-back pairs; the ratio is virgod/memcached per pair (median, min-max)."
	echo
	echo "| good client / server | memcached | virgod | **ratio** (min-max) | better |"
	echo "|---|---|---|---|---|"
	row "p50 latency µs" p50 "lower"
	row "p99 latency µs" p99 "lower"
	row "requests completed" count "higher"
	row "RSS growth MiB (peak - before)" rss "lower"
	row "garbage read MiB" pour "-"
	row "server CPU ms in the window" cpu "-"
	echo
	echo "Failed good-client requests: memcached $(awk '{s += $1} END {print s}' "$W/mc.err"), virgod $(awk '{s += $1} END {print s}' "$W/vd.err")."
	echo
} >"$R/hostile.md"
cat "$R/hostile.md"
