#!/bin/sh
# bench/suite_eventnet.sh <build-dir> <results-dir> - EventNet ingest
# against the memcached port of the same virgod, plus what
# virgo_eventnet_log() costs its caller and `why` on a 1,000,000-event
# graph.
#
# Starts its own virgod (its graph grows by millions of events; the
# shared one stays clean), 2 worker threads per port as in run.sh's.
# Ingest: bench/evload, C clients (1 and 16) each pipelining windows of 64
# requests of a 32-byte payload: `log <new id> conv=<32 B>` on the EventNet
# port, `set <new key> 0 0 32` + 32 B on the memcached port.  BENCH_REPS
# pairs of back-to-back runs alternating which port goes first; the ratio
# is taken within each pair and the median reported with its range.  Both
# acknowledgement policies: eventnet_ack = written (the default: a reply
# means the event is in the journal file) and queued (a second virgod).
# BENCH_EV_OFFSET: the first port offset tried (default 1300).
# Writes eventnet.md.
set -u
B=$1
R=$2
SECS=${BENCH_SECS:-2}
REPS=${BENCH_REPS:-5}
EV=$B/bench/evload
LOGB=$B/bench/bench_eventnet_log
W=$(mktemp -d "${TMPDIR:-/tmp}/virgo-bench-ev-XXXXXX")
PIDS=""
trap 'for p in $PIDS; do kill $p 2>/dev/null; done; for p in $PIDS; do wait $p 2>/dev/null; done; rm -rf "$W"' EXIT
. "$(dirname "$0")/ports.sh"

# start_node <name> <offset> <extra config line>: a fresh virgod
start_node() {
	cat >"$W/$1.conf" <<CONF
node_id = 1
port_offset = $2
threads = 2
mem_limit = 2G
log_level = warn
eventnet_dir = $W/$1
eventnet_max_events = 64M
eventnet_max_bytes = 12G
$3
CONF
	"$B/virgod" --config "$W/$1.conf" >"$W/$1.log" 2>&1 &
	PIDS="$PIDS $!"
	wait_port $((20000 + $2)) 10 || { echo "eventnet bench: virgod $1 did not start" >&2; cat "$W/$1.log" >&2; exit 1; }
}
free_offset() {
	o=$1
	# offset_free (ports.sh): no socket at all on any of the node's ports,
	# since 40000+ and 50000+ are in the ephemeral range, where a client's
	# TIME-WAIT (the cloudfs suite leaves thousands) blocks the bind
	while ! offset_free $o; do o=$((o + 1)); done
	echo $o
}
OFFW=$(free_offset "${BENCH_EV_OFFSET:-1300}")
start_node written "$OFFW" "eventnet_ack = written"
OFFQ=$(free_offset $((OFFW + 1)))
start_node queued "$OFFQ" "eventnet_ack = queued"

ops() { sed -n 's/.*ops_per_s=\([0-9]*\).*/\1/p'; }
run=0
# pair <offset> <clients>: one eventnet run and one memcache run, order
# alternating; prints "<eventnet ops/s> <memcache ops/s>"
pair() {
	run=$((run + 1))
	e() { "$EV" -p $((20000 + $1)) -m eventnet -c "$2" -w 64 -s 32 -d "$SECS" -x "e$run" | ops; }
	m() { "$EV" -p $((11211 + $1)) -m memcache -c "$2" -w 64 -s 32 -d "$SECS" -x "m$run" | ops; }
	if [ $((run % 2)) -eq 0 ]; then a=$(e "$1" "$2"); b=$(m "$1" "$2"); else b=$(m "$1" "$2"); a=$(e "$1" "$2"); fi
	echo "${a:-0} ${b:-0}"
}
# stats <file>: "median_ev median_mc ratio_median ratio_min ratio_max"
stats() {
	ev=$(awk '{print $1}' "$1" | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}')
	mc=$(awk '{print $2}' "$1" | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}')
	r=$(awk '$2 > 0 {printf "%.4f\n", $1 / $2}' "$1" | sort -g |
		awk '{r[NR]=$1} END {if (NR == 0) print "0 0 0"; else printf "%.2f %.2f %.2f\n", r[int((NR+1)/2)], r[1], r[NR]}')
	echo "$ev $mc $r"
}

for mode in written queued; do
	off=$OFFW
	[ $mode = queued ] && off=$OFFQ
	for c in 1 16; do
		: >"$W/p-$mode-$c"
		i=0
		while [ $i -lt "$REPS" ]; do
			pair "$off" "$c" >>"$W/p-$mode-$c"
			i=$((i + 1))
		done
		echo "$mode $c $(stats "$W/p-$mode-$c")" >>"$W/rows"
		echo "ingest ack=$mode clients=$c: $(cat "$W/p-$mode-$c" | tr '\n' ';')" >&2
	done
done

# virgo_eventnet_log(): the caller's cost per event, batching
printf 'node = 1 127.0.0.1 %s\n' "$OFFW" >"$W/client.conf"
LOGR=$(VIRGO_CLIENT_CONF=$W/client.conf "$LOGB" -n 400000 -r 100000 -x lib -s 32)
echo "virgo_eventnet_log: $LOGR" >&2

# why on a 1,000,000-event graph: a chain, the worst case (every event an ancestor)
CH=$("$EV" -p $((20000 + OFFQ)) -m chain -n 1000000 -x w)
WHY=$("$EV" -p $((20000 + OFFQ)) -m why -i w999999 -r 5)
echo "chain: $CH; why: $WHY" >&2
rss=$(awk '/VmRSS/ {printf "%.0f MiB", $2 / 1024}' /proc/"$(echo $PIDS | awk '{print $2}')"/status 2>/dev/null)

v() { echo " $1" | sed -n "s/.* $2=\([0-9.]*\).*/\1/p"; }
{
	echo "## eventnet: event ingest vs the memcached port's set"
	echo
	echo "bench/evload: C clients, each pipelining windows of 64 requests of a 32-byte payload"
	echo "(\`log <new id> conv=<32 B>\` on the EventNet port; \`set <new key> 0 0 32\` on the"
	echo "memcached port of the same virgod), ${SECS} s runs, $REPS pairs of back-to-back runs"
	echo "alternating which port goes first; both ports have 2 worker threads, the load"
	echo "generator shares the same 2 cores.  Every event also gets its Lamport time and"
	echo "vector clock and is appended to the journal, EventNetVertices.txt and"
	echo "EventNetEdges.txt; a cache set is only stored in memory."
	echo
	echo "| eventnet_ack | clients | EventNet events/s | memcached port sets/s | **ratio** (min-max) |"
	echo "|---|---|---|---|---|"
	while read -r mode c ev mc r lo hi; do
		echo "| $mode | $c | $ev | $mc | **$r** ($lo-$hi) |"
	done <"$W/rows"
	echo
	echo "\`written\` (the default) replies once the event's journal line is written (the"
	echo "worker that ran the batch writes every line queued so far, then answers the batch"
	echo "with one write; the text files follow from a workpool thread); \`queued\`"
	echo "replies at once and writes within a second (an acknowledged event can be lost if"
	echo "virgod dies in between).  Ratio: EventNet / memcached port within each pair, median"
	echo "over the pairs."
	echo
	echo "| virgo_eventnet_log() (batched, 400,000 events of 32 B) | |"
	echo "|---|---|"
	echo "| caller's time per call: median / p99 / mean | $(v "$LOGR" p50_call_ns) / $(v "$LOGR" p99_call_ns) / $(v "$LOGR" call_ns) ns |"
	echo "| end to end (queue, send, record, write), flushing every 100,000 | $(v "$LOGR" e2e_per_s) events/s |"
	echo
	echo "The call checks its arguments and appends to a queue under a mutex; a library"
	echo "thread sends the batches.  (Dapper reports about 200 ns per span.)"
	echo
	echo "| why on a 1,000,000-event graph (a chain: every event an ancestor) | |"
	echo "|---|---|"
	echo "| building it: 1,000,000 pipelined \`log ... after=<previous>\` | $(v "$CH" secs) s |"
	echo "| \`why <last> 0\` (walk and sort all 999,999 ancestors, count only), median of 5 | $(v "$WHY" why_ms) ms |"
	echo "| \`why <last> 1000\` (the same, listing the latest 1000) | $(v "$WHY" list_ms) ms |"
	echo "| virgod's resident memory afterwards (the queued node, ~1M + ingest events) | ${rss:-?} |"
} >"$R/eventnet.md"
cat "$R/eventnet.md"
