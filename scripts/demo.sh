#!/bin/sh
# Starts a local 3-node VIRGO cluster on loopback (nodes 1..3, port offsets
# 0..2: the built-in client defaults), walks through every service that
# exists so far with visible output, and stops the cluster cleanly.
set -eu
B=${1:-build}
VIRGOD=$B/virgod
VIRGO=$B/virgo
DIR=$(mktemp -d "${TMPDIR:-/tmp}/virgo-demo-XXXXXX")
PIDS=""
stop() {
	for p in $PIDS; do kill -TERM "$p" 2>/dev/null || true; done
	for p in $PIDS; do wait "$p" 2>/dev/null || true; done
	PIDS=""
}
trap 'stop' EXIT INT TERM

# don't pick up a system-wide client config: the demo uses the built-ins
export VIRGO_CONF_DIR="$DIR"
say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
run() { printf '$ %s\n' "$*"; "$@"; }

# The demo needs the notes' ports at offsets 0..2.  A system memcached on
# 11211 is common (make bench installs one): then the memcached port moves
# to 21211+; any other busy port is a running VIRGO node or a conflict.
busy() { nc -z 127.0.0.1 "$1" 2>/dev/null; }
MCBASE=11211
for i in 0 1 2; do
	for port in $((10000 + i)) $((20000 + i)) $((30000 + i)); do
		if busy $port; then
			echo "port $port is in use (a virgod already running? stop it first)" >&2
			exit 1
		fi
	done
	busy $((11211 + i)) && MCBASE=21211
done
[ $MCBASE = 11211 ] || echo "(11211 is taken, probably by a system memcached: the demo's memcached port is $MCBASE)"

say "starting 3 virgod nodes (logs in $DIR)"
for i in 1 2 3; do
	printf 'node_id = %d\nport_offset = %d\npidfile = %s\nmemcache_port = %d\neventnet_dir = %s\n' \
		"$i" $((i - 1)) "$DIR/node$i.pid" $((MCBASE + i - 1)) "$DIR/eventnet$i" >"$DIR/node$i.conf"
	"$VIRGOD" --config "$DIR/node$i.conf" 2>"$DIR/node$i.log" &
	PIDS="$PIDS $!"
done
for i in 1 2 3; do # wait for readiness (pidfile), at most 10 s
	n=0
	while [ ! -f "$DIR/node$i.pid" ]; do
		n=$((n + 1))
		if [ $n -gt 1000 ]; then cat "$DIR/node$i.log"; exit 1; fi
		sleep 0.01
	done
done
run "$VIRGO" ping

say "memory pooling: allocate, write, read, free (notes §887, §894)"
V=$("$VIRGO" malloc 5000)
echo "\$ virgo malloc 5000"; echo "$V"
run "$VIRGO" set "$V" "hello from the VIRGO memory pool"
printf '$ virgo get %s\n' "$V"; "$VIRGO" get "$V"; echo
run "$VIRGO" free "$V"
printf '$ virgo get %s   # after free\n' "$V"
"$VIRGO" get "$V" || true

say "an allocation larger than a chunk (1 MiB) spans nodes"
head -c 3000000 /dev/urandom >"$DIR/blob"
S=$("$VIRGO" malloc 3000000)
echo "\$ virgo malloc 3000000"; echo "$S"
run "$VIRGO" set "$S" - <"$DIR/blob"
printf '$ virgo get %s | cmp - blob\n' "$S"
"$VIRGO" get "$S" | cmp - "$DIR/blob" && echo "identical (3000000 bytes, binary)"
run "$VIRGO" status
run "$VIRGO" free "$S"

say "the notes' telnet path on port 30000"
printf "\$ printf 'virgo_cloud_malloc(1000)\\\\n' | nc 127.0.0.1 30000\n"
ID=$(printf 'virgo_cloud_malloc(1000)\n' | nc 127.0.0.1 30000 | tr -d '\r')
echo "$ID"
printf "\$ printf 'virgo_cloud_set(%s,telnet data)\\\\nvirgo_cloud_get(%s)\\\\nvirgo_cloud_free(%s)\\\\n' | nc 127.0.0.1 30000\n" "$ID" "$ID" "$ID"
printf 'virgo_cloud_set(%s,telnet data)\nvirgo_cloud_get(%s)\nvirgo_cloud_free(%s)\n' "$ID" "$ID" "$ID" | nc 127.0.0.1 30000

say "native protocol with a length-prefixed value (binary safe, pipelined)"
printf '$ printf '"'"'malloc 16\\r\\nstats\\r\\nquit\\r\\n'"'"' | nc 127.0.0.1 30001\n'
printf 'malloc 16\r\nstats\r\nquit\r\n' | nc 127.0.0.1 30001

say "the memcached port: any memcached client works (11211 + port offset)"
printf "\$ printf 'set k 0 0 5\\\\r\\\\nhello\\\\r\\\\nget k\\\\r\\\\nquit\\\\r\\\\n' | nc 127.0.0.1 %d\n" $MCBASE
printf 'set k 0 0 5\r\nhello\r\nget k\r\nquit\r\n' | nc 127.0.0.1 $MCBASE
run "$VIRGO" owner k user:1 user:2   # the node each key belongs to (ketama, as clients shard)
run memcdump --servers=127.0.0.1:$MCBASE   # memcached's tools work too: the node's keys

say "CPU pooling: functions and programs on the best node (notes §888-§890, §937)"
run "$VIRGO" clone virgo_cloud_test "hello from the VIRGO cpupool"
echo
run "$VIRGO" run -- uname -a
run "$VIRGO" run --on node2 -- echo "ran on node 2, argv passed as is: 'a b'"
printf '$ virgo run -- rm -rf /tmp/x   # not in the default allow-list\n'
"$VIRGO" run -- rm -rf /tmp/x || echo "(exit $?)"
run "$VIRGO" map -j 3 -- echo "input:" {} ::: one two three four
run "$VIRGO" clone --policy learned virgo_sleep 100
echo
printf "\$ printf 'virgo_clone(virgo_cloud_test,hello)\\\\n' | nc 127.0.0.1 10000\n"
printf 'virgo_clone(virgo_cloud_test,hello)\n' | nc 127.0.0.1 10000
printf '$ printf '"'"'load\\r\\nquit\\r\\n'"'"' | nc 127.0.0.1 10002\n'
printf 'load\r\nquit\r\n' | nc 127.0.0.1 10002
run "$VIRGO" status

say "EventNet: a causal event graph with logical clocks (notes §913, §923, §994)"
printf "\$ printf 'eventnet_vertexmsg#1-alice,bob-(hello,hi)\\\\n' | nc 127.0.0.1 20000\n"
printf 'eventnet_vertexmsg#1-alice,bob-(hello,hi)\n' | nc 127.0.0.1 20000
printf "\$ printf 'eventnet_edgemsg#3#1#2\\\\n' | nc 127.0.0.1 20000\n"
printf 'eventnet_edgemsg#3#1#2\n' | nc 127.0.0.1 20000
run "$VIRGO" eventnet log --id login --partakers alice,web1 --conv '(GET,/login)' --after 2
echo '$ VIRGO_TRACE=1 virgo clone --on node2 virgo_cloud_test traced   # libvirgo traces itself'
VIRGO_TRACE=1 "$VIRGO" clone --on node2 virgo_cloud_test traced
echo
T=$("$VIRGO" eventnet tail -n 50 | awk '$3 ~ /^clone-.*-reply$/ {id = $3} END {print id}')
run "$VIRGO" eventnet why "$T"   # submit (home node) -> run (node 2) -> reply, by their clocks
run "$VIRGO" eventnet before login "$T"
run "$VIRGO" eventnet tail -n 3
run "$VIRGO" eventnet dot
if command -v dot >/dev/null; then
	"$VIRGO" eventnet svg >"$DIR/eventnet.svg" &&
		echo "\$ virgo eventnet svg > eventnet.svg   # $(wc -c <"$DIR/eventnet.svg") bytes of SVG"
fi
printf '$ cat EventNetVertices.txt EventNetEdges.txt   # node 1, for the AsFer reader\n'
cat "$DIR/eventnet1/EventNetVertices.txt" "$DIR/eventnet1/EventNetEdges.txt"

say "stopping the cluster (SIGTERM: drain and exit 0)"
for p in $PIDS; do kill -TERM "$p"; done
rc=0
for p in $PIDS; do wait "$p" || rc=1; done
PIDS=""
[ $rc -eq 0 ] && echo "all nodes exited cleanly"
rm -rf "$DIR"
exit $rc
