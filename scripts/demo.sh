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
MNT=""
stop() {
	[ -z "$MNT" ] || fusermount3 -u -z "$MNT" 2>/dev/null || true
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
	for port in $((10000 + i)) $((20000 + i)) $((30000 + i)) $((50000 + i)) $((64000 + i)); do
		if busy $port; then
			echo "port $port is in use (a virgod already running? stop it first)" >&2
			exit 1
		fi
	done
	busy $((11211 + i)) && MCBASE=21211
done
[ $MCBASE = 11211 ] || echo "(11211 is taken, probably by a system memcached: the demo's memcached port is $MCBASE)"

say "starting 3 virgod nodes (logs in $DIR)"
# the original's kernel analytics file, for node 1
printf 'match=True,kernel_analytics1=v1\n' >"$DIR/virgo_kernel_analytics.conf"
for i in 1 2 3; do
	# node 2 traces itself (eventnet_trace): it records the traced clone's run step
	printf 'node_id = %d\nport_offset = %d\npidfile = %s\nmemcache_port = %d\ncloudfs_export_root = %s\neventnet_dir = %s\nanalytics_conf = %s\neventnet_trace = %s\n' \
		"$i" $((i - 1)) "$DIR/node$i.pid" $((MCBASE + i - 1)) "$DIR/export$i" "$DIR/eventnet$i" \
		"$([ $i = 1 ] && echo "$DIR/virgo_kernel_analytics.conf")" "$([ $i = 2 ] && echo yes || echo no)" >"$DIR/node$i.conf"
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

say "cloud file system: files on any node (notes §902, §903)"
head -c 5000000 /dev/urandom >"$DIR/big.bin"
run "$VIRGO" mkdir -p node2:/data
run "$VIRGO" cp "$DIR/big.bin" node2:/data/big.bin
run "$VIRGO" cp node2:/data/big.bin node3:/data.bin     # node to node
run "$VIRGO" cp node3:/data.bin "$DIR/back.bin"
run cmp "$DIR/big.bin" "$DIR/back.bin" && echo "identical after here -> node2 -> node3 -> here"
run "$VIRGO" ls -l node2:/data
run "$VIRGO" stat node3:/data.bin
printf "\$ printf 'virgo_cloud_open(/virgofstest.txt)\\\\n' | nc 127.0.0.1 50000\n"
FD=$(printf 'virgo_cloud_open(/virgofstest.txt)\n' | nc 127.0.0.1 50000 | tr -d '\r')
echo "$FD"
printf "\$ printf 'virgo_cloud_write($FD,hello from the notes,20,0)\\\\n' | nc 127.0.0.1 50000\n"
printf 'virgo_cloud_write(%s,hello from the notes,20,0)\n' "$FD" | nc 127.0.0.1 50000
printf 'virgo_cloud_close(%s)\n' "$FD" | nc 127.0.0.1 50000 >/dev/null
run "$VIRGO" cat node1:/virgofstest.txt; echo
run "$VIRGO" ls node1:/
run "$VIRGO" cat node1:/../../etc/passwd || echo "(refused: paths stay under the export root)"
if [ -x "$B/virgofs" ] && [ -e /dev/fuse ] && command -v fusermount3 >/dev/null; then
	say "the whole cluster as one FUSE mount: unmodified programs on remote files"
	mkdir -p "$DIR/mnt"
	printf '$ %s\n' "$B/virgofs $DIR/mnt"
	"$B/virgofs" "$DIR/mnt" && MNT="$DIR/mnt"
	n=0
	while [ -n "${MNT:-}" ] && [ ! -d "$DIR/mnt/node2" ] && [ $n -lt 250 ]; do sleep 0.02; n=$((n + 1)); done
	run ls "$DIR/mnt"
	run sha256sum "$DIR/big.bin" "$DIR/mnt/node2/data/big.bin" "$DIR/mnt/node3/data.bin"
	run cp "$DIR/mnt/node2/data/big.bin" "$DIR/mnt/node1/via-mount.bin"
	run ls -l "$DIR/mnt/node1"
	run fusermount3 -u "$DIR/mnt"
	MNT=""
fi
say "kernel analytics: learnt variables that change what the nodes do, live (notes §898)"
echo "\$ echo 'MaxNetworkBandwidth=255,match=True' | nc -q1 127.0.0.1 64000"
echo 'MaxNetworkBandwidth=255,match=True' | nc -q1 127.0.0.1 64000
echo "\$ echo ',threshold=[0.5, 0.3, 0.2]' >> virgo_kernel_analytics.conf   # re-read within a second"
echo ',threshold=[0.5, 0.3, 0.2]' >>"$DIR/virgo_kernel_analytics.conf"
sleep 1.5
run "$VIRGO" analytics ls node1
two_sleeps() { # two 400 ms jobs on node 1 at once: the wall time
	t0=$(date +%s%N)
	"$VIRGO" clone --on node1 virgo_sleep 400 >/dev/null &
	"$VIRGO" clone --on node1 virgo_sleep 400 >/dev/null
	wait $!
	echo "two 400 ms jobs on node 1 took $((($(date +%s%N) - t0) / 1000000)) ms"
}
two_sleeps
run "$VIRGO" analytics set node1 cpu_workers=1      # from now on one job at a time
two_sleeps
printf '$ virgo analytics set node1 cpu_workers=lots\n'
"$VIRGO" analytics set node1 cpu_workers=lots || echo "(exit $?: refused, the old value stays)"
run "$VIRGO" analytics set node1 cpu_workers=0      # back to one per core
run "$VIRGO" analytics set node2 weight=0           # drain node 2: no new jobs there
run "$VIRGO" analytics history node1 cpu_workers
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
run "$VIRGO" eventnet why "$T"   # submit (home node) -> run (recorded by node 2 itself: eventnet_trace) -> reply, by their clocks
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
