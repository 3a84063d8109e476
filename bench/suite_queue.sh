#!/bin/sh
# bench/suite_queue.sh <build-dir> <results-dir> - the durable queue's
# acknowledged-push throughput and p99 against Redis with appendonly yes,
# appendfsync always (XADD of the same payloads), and this machine's own
# fdatasync limit.
#
# Starts its own virgod (the queue alone, queue_dir under the suite's
# scratch directory, queue_fsync = always, queue_threads at its default
# of 1) and its own redis-server on a free loopback port (AOF in the same
# scratch directory, same file system).
# Rows: 1 and 16 producers x 128 B and 4 KiB; each producer has one push
# outstanding (closed loop: push, wait for the acknowledgement, push).
# The 16 producers are 16 connections driven by one client thread with
# epoll (bench_queue.c), for both servers: 16 blocking client threads
# cost the client 16-23 us of CPU per push on 2 cores, as much as the
# server, against 11-14 us for the loop (BENCH_QUEUE_CLIENT=threads
# brings the threads back).
# BENCH_REPS pairs of back-to-back runs, alternating which server goes
# first; the ratio is taken within each pair and the median reported
# with its range, and each server's CPU time per acknowledged push
# (utime + stime from /proc over the same runs, median: steadier than
# wall-clock on a shared machine), and the node's records per sync (the
# bench topic's STAT records and syncs around each run: how many pushes a
# commit round carried).  The limit: one thread appending 128 B records and
# fdatasync()ing every 1, 16 and 64 records (bench_queue fsync), the
# best a log on this disk can do with that much group commit.  Also the
# subscriber fan-out: 1 producer, 8 subscribers, end-to-end latency.
# Writes queue.md.
set -u
B=$1
R=$2
SECS=${BENCH_SECS:-2}
REPS=${BENCH_REPS:-5}
TOOL=$BENCH_TOOLS/bench_queue
W=$(mktemp -d "${BENCH_QUEUE_DIR:-/var/tmp}/virgo-bench-q-XXXXXX")
VPID=""
RPID=""
trap '[ -n "$VPID" ] && kill $VPID 2>/dev/null; [ -n "$RPID" ] && kill $RPID 2>/dev/null; wait 2>/dev/null; rm -rf "$W"' EXIT
. "$(dirname "$0")/ports.sh"

median() { sort -g | awk '{a[NR] = $1} END {if (NR == 0) print 0; else print a[int((NR + 1) / 2)]}'; }
minmax() { sort -g | awk 'NR == 1 {lo = $1} {hi = $1} END {printf "%s-%s", lo, hi}'; }

command -v redis-server >/dev/null || { echo "redis-server not installed (scripts/deps.sh --bench)" >&2; exit 1; }

# only the queue listens (the other services' ports are off): on a shared
# machine their ports, some in the ephemeral range, are often taken
OFF=${BENCH_QUEUE_OFFSET:-1400}
while ! port_free $((60000 + OFF)); do OFF=$((OFF + 1)); done
QP=$((60000 + OFF))
cat >"$W/virgo_cloud.conf" <<CONF
node_id = 1
port_offset = $OFF
threads = 2
memcache_port = 0
cpupool_port = 0
mempool_port = 0
cloudsync_port = 0
cloudfs_port = 0
eventnet_port = 0
analytics_port = 0
pidfile = $W/virgod.pid
log_level = warn
queue_dir = $W/q
queue_fsync = always
CONF
"$B/virgod" --config "$W/virgo_cloud.conf" >"$R/queue-virgod.log" 2>&1 &
VPID=$!
wait_port $QP 5 || { echo "virgod did not start" >&2; cat "$R/queue-virgod.log"; exit 1; }

RP=26379
while ! port_free $RP; do RP=$((RP + 1)); done
mkdir -p "$W/redis"
redis-server --port $RP --bind 127.0.0.1 --dir "$W/redis" --appendonly yes --appendfsync always \
	--save '' --daemonize no --protected-mode yes >"$R/queue-redis.log" 2>&1 &
RPID=$!
wait_port $RP 5 || { echo "redis-server did not start" >&2; cat "$R/queue-redis.log"; exit 1; }

# run <virgo|redis> <port> <producers> <size> -> "ops p50 p99"
run() { "$TOOL" "$1" "$2" "$3" "$4" "$SECS" || echo "0 0 0"; }
# records per sync of the bench topic between two "records syncs" lines
rps() { echo "$1 $2" | awk '{ d = $4 - $2; if (d > 0) printf "%.1f\n", ($3 - $1) / d; else print 0 }'; }
# CPU ticks (utime + stime) of a process so far
ticks() { awk '{print $14 + $15}' "/proc/$1/stat" 2>/dev/null || echo 0; }
HZ=$(getconf CLK_TCK)
# runc <virgo|redis> <port> <producers> <size> <pid> <cpufile>: run, and
# append the server's CPU µs per acknowledged push to cpufile
runc() {
	c0=$(ticks "$5")
	out=$(run "$1" "$2" "$3" "$4")
	c1=$(ticks "$5")
	echo "$out" | awk -v a="$c0" -v b="$c1" -v hz="$HZ" -v s="$SECS" \
		'{ if ($1 > 0) printf "%.1f\n", (b - a) * 1e6 / hz / ($1 * s); else print 0 }' >>"$6"
	echo "$out"
}

{
	echo "## queue: durable push vs Redis (appendonly yes, appendfsync always)"
	echo
	echo "Each producer pushes one record at a time and waits for its acknowledgement;"
	echo "${BENCH_QUEUE_CLIENT:-loop}: the 16 producers' connections are driven by $([ "${BENCH_QUEUE_CLIENT:-loop}" = threads ] && echo "a blocking thread each" || echo "one client thread (epoll)")"
	echo "(virgod: \`push\`, acknowledged after fdatasync with group commit; Redis:"
	echo "\`XADD\`, acknowledged after its AOF fsync).  Both logs in $(df -P "$W" | awk 'NR == 2 {print $1}')"
	echo "($(df -PT "$W" | awk 'NR == 2 {print $2}')); $REPS back-to-back pairs of ${SECS} s runs, median (range) of"
	echo "the pairs' ratios."
	echo
	echo "| producers | payload | virgod push/s | Redis XADD/s | ratio | virgod p99 µs | Redis p99 µs | p99 ratio (lower is better) | CPU µs/push virgod / Redis | virgod records/sync |"
	echo "|---|---|---|---|---|---|---|---|---|---|"
} >"$R/queue.md"

for row in "1 128" "16 128" "1 4096" "16 4096"; do
	set -- $row
	np=$1
	sz=$2
	: >"$W/ratios"
	: >"$W/p99r"
	: >"$W/v"
	: >"$W/r"
	: >"$W/vc"
	: >"$W/rc"
	: >"$W/rps"
	for i in $(seq 1 "$REPS"); do
		if [ $((i % 2)) -eq 1 ]; then
			s0=$("$TOOL" stat $QP)
			v=$(runc virgo $QP "$np" "$sz" $VPID "$W/vc")
			rps "$s0" "$("$TOOL" stat $QP)" >>"$W/rps"
			r=$(runc redis $RP "$np" "$sz" $RPID "$W/rc")
		else
			r=$(runc redis $RP "$np" "$sz" $RPID "$W/rc")
			s0=$("$TOOL" stat $QP)
			v=$(runc virgo $QP "$np" "$sz" $VPID "$W/vc")
			rps "$s0" "$("$TOOL" stat $QP)" >>"$W/rps"
		fi
		echo "$v" >>"$W/v"
		echo "$r" >>"$W/r"
		echo "$v $r" | awk '{ if ($4 > 0) printf "%.3f\n", $1 / $4; else print 0 }' >>"$W/ratios"
		echo "$v $r" | awk '{ if ($6 > 0) printf "%.3f\n", $3 / $6; else print 0 }' >>"$W/p99r"
		echo "row $np x $sz B: virgod $v | redis $r"
	done
	vt=$(cut -d' ' -f1 "$W/v" | median)
	rt=$(cut -d' ' -f1 "$W/r" | median)
	vp=$(cut -d' ' -f3 "$W/v" | median)
	rpp=$(cut -d' ' -f3 "$W/r" | median)
	ra="$(median <"$W/ratios")× ($(minmax <"$W/ratios"))"
	pr="$(median <"$W/p99r")× ($(minmax <"$W/p99r"))"
	echo "| $np | $sz B | $vt | $rt | $ra | $vp | $rpp | $pr | $(median <"$W/vc") / $(median <"$W/rc") | $(median <"$W/rps") |" >>"$R/queue.md"
done

# the machine's own limit (same file system); the 16-producer row against
# the 16-records-per-fdatasync limit in back-to-back pairs, as the rows
# above (this disk's fdatasync rate moves between seconds)
l1=$("$TOOL" fsync "$W" 1 128 "$SECS")
l64=$("$TOOL" fsync "$W" 64 128 "$SECS")
: >"$W/lim"
: >"$W/l16"
: >"$W/rps16"
for i in $(seq 1 "$REPS"); do
	l16=$("$TOOL" fsync "$W" 16 128 "$SECS")
	s0=$("$TOOL" stat $QP)
	v16=$(run virgo $QP 16 128 | cut -d' ' -f1)
	x=$(rps "$s0" "$("$TOOL" stat $QP)")
	echo "$x" >>"$W/rps16"
	echo "limit pair: 16-per-fdatasync $l16 records/s | virgod 16 x 128 B $v16 push/s, $x records/sync"
	echo "$l16" >>"$W/l16"
	awk -v a="$v16" -v b="$l16" 'BEGIN {r = 0; if (b > 0) r = a / b; printf "%.2f\n", r}' >>"$W/lim"
done
{
	echo
	echo "Physical limit on this disk (one thread appending 128 B records + fdatasync):"
	echo "$l1 records/s at 1 record per fdatasync, $(median <"$W/l16") at 16 (median of $REPS), $l64 at 64."
	echo "16 producers x 128 B, each run right after a 16-per-fdatasync run:"
	echo "$(median <"$W/lim") ($(minmax <"$W/lim")) of that limit, $(median <"$W/rps16") records per sync (each producer"
	echo "has one push outstanding, so 16 is the largest group a round can commit)."
} >>"$R/queue.md"

f=$("$TOOL" fanout $QP 8 128 "$SECS" || echo "0 0 0")
set -- $f
{
	echo
	echo "Subscriber fan-out: 1 producer (durable pushes, closed loop), 8 subscribers"
	echo "following the topic: $1 push/s, end-to-end latency (push sent to MSG"
	echo "received) p50 $2 µs, p99 $3 µs."
} >>"$R/queue.md"
cat "$R/queue.md"
