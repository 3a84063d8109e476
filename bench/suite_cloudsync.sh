#!/bin/sh
# bench/suite_cloudsync.sh <build-dir> <results-dir> - cluster locks
# (cloudsync) against the usual single-instance Redis lock, SET <name>
# <token> NX PX <ttl> + DEL, with bench/lockbench.c driving both over
# loopback (Redis: redis-server on a free port, no persistence; virgod:
# its own node, threads = 2, started here).
#
# 1. Uncontended: one client takes and releases the lock in a loop:
#    acquire+release round trip, as the ratio virgod / Redis (lower is
#    better; the PRODUCT target is <= 1.0), BENCH_REPS alternating pairs,
#    median pair ratio with its range (the VM's speed drifts).
# 2. Contended: 16 clients on one lock, each holding it 100 µs (a sleep,
#    as for I/O) and wanting it again at once: handoffs per second (grants
#    to another client than the last holder) and the wait p99 / max.
#    cloudsync queues the waiters (FIFO, the grant is pushed); Redis
#    clients retry as their users do: after 100 ms (redis-py's Lock
#    default) and after 1 ms (a tight spin).
# 3. The zookeeper backend (a second virgod, lock_backend = zookeeper)
#    beside ZooKeeper's own lock recipe used directly with its C client,
#    both against one ZooKeeper started here (Debian's zookeeper + java;
#    forceSync=no, so this VM's disk latency does not drown the
#    difference): uncontended round trip ratio (target <= 1.2) and 16
#    contenders' handoffs/s.
# Writes cloudsync.md.
set -u
B=$1
R=$2
SECS=${BENCH_SECS:-2}
REPS=${BENCH_REPS:-5}
LB=$B/bench/lockbench
OUT=$R/cloudsync.md
W=$(mktemp -d "${TMPDIR:-/tmp}/virgo-bench-cs-XXXXXX")
VPID=""
RPID=""
ZPID=""
ZVPID=""
trap 'for p in $VPID $RPID $ZPID $ZVPID; do kill $p 2>/dev/null; done; wait 2>/dev/null; rm -rf "$W"' EXIT
. "$(dirname "$0")/ports.sh"

if ! command -v redis-server >/dev/null || [ ! -x "$LB" ]; then
	printf '## cloudsync (cluster locks) vs Redis SET NX PX + DEL\n\nskipped: needs redis-server (apt-get install redis-server) and %s\n' "$LB" >"$OUT"
	exit 0
fi

OFF=1100
while ! port_unused $((40000 + OFF)) || ! port_free $((30000 + OFF)) || ! port_free $((10000 + OFF)) ||
	! port_free $((11211 + OFF)); do OFF=$((OFF + 1)); done
CSP=$((40000 + OFF))
cat >"$W/node.conf" <<CONF
node_id = 1
port_offset = $OFF
threads = 2
log_level = warn
lock_state_dir = $W/state
CONF
"$B/virgod" --config "$W/node.conf" >"$W/virgod.log" 2>&1 &
VPID=$!
RP=26379
while ! port_free $RP; do RP=$((RP + 1)); done
redis-server --port $RP --bind 127.0.0.1 --save '' --appendonly no --logfile "$W/redis.log" &
RPID=$!
wait_port $CSP 5 || { echo "virgod did not start"; cat "$W/virgod.log"; exit 1; }
wait_port $RP 5 || { echo "redis-server did not start"; cat "$W/redis.log"; exit 1; }

field() { sed -n "s/.*$1=\([0-9.]*\).*/\1/p"; }
median() { sort -g | awk '{a[NR] = $1} END {if (NR == 0) print 0; else print a[int((NR + 1) / 2)]}'; }

# 1. uncontended round trips, alternating pairs
: >"$W/pairs"
i=0
while [ $i -lt "$REPS" ]; do
	if [ $((i % 2)) -eq 0 ]; then
		v=$("$LB" -s virgo -p $CSP -c 1 -d "$SECS" | field acq_per_s)
		r=$("$LB" -s redis -p $RP -c 1 -d "$SECS" | field acq_per_s)
	else
		r=$("$LB" -s redis -p $RP -c 1 -d "$SECS" | field acq_per_s)
		v=$("$LB" -s virgo -p $CSP -c 1 -d "$SECS" | field acq_per_s)
	fi
	echo "$v $r" >>"$W/pairs"
	i=$((i + 1))
done
# round trip ratio virgod/redis = redis pairs per s / virgod pairs per s
ratio=$(awk '{printf "%.3f\n", $2 / $1}' "$W/pairs" | median)
rmin=$(awk '{printf "%.3f\n", $2 / $1}' "$W/pairs" | sort -g | head -1)
rmax=$(awk '{printf "%.3f\n", $2 / $1}' "$W/pairs" | sort -g | tail -1)
vrt=$(awk '{print 1e6 / $1}' "$W/pairs" | median)
rrt=$(awk '{print 1e6 / $2}' "$W/pairs" | median)

# 2. 16 contenders, hold 100 µs
cv=$("$LB" -s virgo -p $CSP -c 16 -d "$SECS" -H 100)
cr100=$("$LB" -s redis -p $RP -c 16 -d "$SECS" -H 100 -r 100000)
cr1=$("$LB" -s redis -p $RP -c 16 -d "$SECS" -H 100 -r 1000)
row() { # label, lockbench line
	printf '| %s | %s | %s | %s | %s |\n' "$1" "$(echo "$2" | field handoffs_per_s)" \
		"$(echo "$2" | field acq_per_s)" "$(echo "$2" | field wait_p99_us)" "$(echo "$2" | field wait_max_us)"
}
hv=$(echo "$cv" | field handoffs_per_s)
h100=$(echo "$cr100" | field handoffs_per_s)
h1=$(echo "$cr1" | field handoffs_per_s)

# 3. zookeeper backend vs the recipe used directly
zk_md=""
if [ -x /usr/bin/java ] && [ -r /usr/share/java/zookeeper.jar ]; then
	ZP=22181
	while ! port_unused $ZP; do ZP=$((ZP + 1)); done
	mkdir -p "$W/zk"
	java -Xmx256m -Dzookeeper.forceSync=no -Dzookeeper.admin.enableServer=false \
		-cp /etc/zookeeper/conf:/usr/share/java/zookeeper.jar \
		org.apache.zookeeper.server.ZooKeeperServerMain $ZP "$W/zk" >"$W/zk.log" 2>&1 &
	ZPID=$!
	ZOFF=$((OFF + 1))
	while ! port_unused $((40000 + ZOFF)) || ! port_free $((30000 + ZOFF)) ||
		! port_free $((10000 + ZOFF)) || ! port_free $((11211 + ZOFF)); do ZOFF=$((ZOFF + 1)); done
	cat >"$W/zknode.conf" <<CONF
node_id = 2
port_offset = $ZOFF
threads = 2
log_level = warn
lock_backend = zookeeper
zookeeper = 127.0.0.1:$ZP
CONF
	if wait_port $ZP 30; then
		"$B/virgod" --config "$W/zknode.conf" >"$W/zkvirgod.log" 2>&1 &
		ZVPID=$!
		ZCS=$((40000 + ZOFF))
		wait_port $ZCS 5
		n=0 # the node's session starts once it listens
		until printf 'trylock benchready\r\n' | nc -q1 127.0.0.1 $ZCS 2>/dev/null | grep -q '^OK'; do
			n=$((n + 1)); [ $n -lt 200 ] || break
			sleep 0.05
		done
		: >"$W/zpairs"
		i=0
		while [ $i -lt "$REPS" ]; do
			v=$("$LB" -s virgo -p $ZCS -c 1 -d "$SECS" | field acq_per_s)
			z=$("$LB" -s zk -p $ZP -c 1 -d "$SECS" | field acq_per_s)
			echo "$v $z" >>"$W/zpairs"
			i=$((i + 1))
		done
		zratio=$(awk '{printf "%.3f\n", ($1 > 0 ? $2 / $1 : 0)}' "$W/zpairs" | median)
		zmin=$(awk '{printf "%.3f\n", ($1 > 0 ? $2 / $1 : 0)}' "$W/zpairs" | sort -g | head -1)
		zmax=$(awk '{printf "%.3f\n", ($1 > 0 ? $2 / $1 : 0)}' "$W/zpairs" | sort -g | tail -1)
		zvrt=$(awk '{print ($1 > 0 ? 1e6 / $1 : 0)}' "$W/zpairs" | median)
		zzrt=$(awk '{print ($2 > 0 ? 1e6 / $2 : 0)}' "$W/zpairs" | median)
		zcv=$("$LB" -s virgo -p $ZCS -c 16 -d "$SECS" -H 100)
		zcz=$("$LB" -s zk -p $ZP -c 16 -d "$SECS" -H 100)
		zk_md=$(
			echo "### zookeeper backend vs ZooKeeper's lock recipe used directly"
			echo
			echo "One ZooKeeper 3.8 (standalone, forceSync=no) for both."
			echo
			echo "| | cloudsync (lock_backend = zookeeper) | recipe via the C client | ratio (target <= 1.2) |"
			echo "|---|---|---|---|"
			printf '| uncontended round trip (median of %s, µs) | %.0f | %.0f | **%s** (pairs: %s..%s) |\n' "$REPS" "$zvrt" "$zzrt" "$zratio" "$zmin" "$zmax"
			printf '| 16 contenders: handoffs/s | %s | %s | |\n' "$(echo "$zcv" | field handoffs_per_s)" "$(echo "$zcz" | field handoffs_per_s)"
			printf '| 16 contenders: wait p99 (µs) | %s | %s | |\n' "$(echo "$zcv" | field wait_p99_us)" "$(echo "$zcz" | field wait_p99_us)"
		)
	else
		zk_md="### zookeeper backend: skipped (ZooKeeper did not start)"
	fi
else
	zk_md="### zookeeper backend: skipped (needs java and Debian's zookeeper: apt-get install zookeeperd)"
fi

{
	echo "## cloudsync (cluster locks) vs Redis SET NX PX + DEL"
	echo
	echo "bench/lockbench.c over loopback; virgod threads = 2, redis-server without persistence."
	echo
	echo "### Uncontended acquire+release round trip (one client)"
	echo
	echo "| | virgod | Redis | ratio virgod/Redis (target <= 1.0) |"
	echo "|---|---|---|---|"
	printf '| round trip (median of %s, µs) | %.1f | %.1f | **%s** (pairs: %s..%s) |\n' "$REPS" "$vrt" "$rrt" "$ratio" "$rmin" "$rmax"
	echo
	echo "### 16 contenders on one lock, each holding it 100 µs"
	echo
	echo "| | handoffs/s | acquisitions/s | wait p99 (µs) | wait max (µs) |"
	echo "|---|---|---|---|---|"
	row "cloudsync (FIFO queue, pushed grant)" "$cv"
	row "Redis, retry after 100 ms (redis-py default)" "$cr100"
	row "Redis, retry after 1 ms" "$cr1"
	echo
	awk -v v="$hv" -v a="$h100" -v b="$h1" 'BEGIN {printf "Handoffs/s ratio cloudsync/Redis: %.2f (retry 100 ms), %.2f (retry 1 ms).\n", (a > 0 ? v / a : 0), (b > 0 ? v / b : 0)}'
	echo "A Redis client that just released the lock usually takes it again before"
	echo "the sleeping others retry, so few acquisitions are handoffs and the"
	echo "unlucky clients wait for whole retry periods (wait max); cloudsync serves"
	echo "the waiters in arrival order, so every grant is a handoff and the wait is"
	echo "bounded by the queue ahead (16 x the hold)."
	echo
	echo "$zk_md"
} >"$OUT"
cat "$OUT"
