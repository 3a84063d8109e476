#!/bin/sh
# Bench suite: set/get round trips through libvirgo against one virgod node,
# beside the same load through libmemcached against `memcached -t 2` (the
# peer), alternating runs.  Usage: suite_libvirgo.sh <build-dir> <results-dir>
# Writes <results-dir>/suite_libvirgo.md: ratios virgo/memcached.
set -eu
B=${1:-build-bench}
R=${2:-bench/results}
mkdir -p "$R"
OUT="$R/suite_libvirgo.md"
BIN="$B/bench/bench_libvirgo"
if [ ! -x "$BIN" ] || ! command -v memcached >/dev/null; then
	printf '### libvirgo set/get vs libmemcached+memcached\n\nskipped: needs %s and memcached\n' "$BIN" >"$OUT"
	exit 0
fi
DIR=$(mktemp -d)
OFF=1310
MCPORT=21311
cleanup() { kill $VPID $MPID 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$DIR"; }
"$B/virgod" --node-id 1 --port-offset $OFF --threads 2 --pidfile "$DIR/v.pid" 2>"$DIR/v.log" &
VPID=$!
MCUSER=""; [ "$(id -u)" -eq 0 ] && MCUSER="-u nobody"
memcached -t 2 -l 127.0.0.1 -p $MCPORT -U 0 -m 256 $MCUSER &
MPID=$!
trap cleanup EXIT
n=0
until [ -f "$DIR/v.pid" ] && nc -z 127.0.0.1 $MCPORT 2>/dev/null; do
	n=$((n + 1)); [ $n -lt 500 ] || { echo "peers did not start"; exit 1; }
	sleep 0.02
done
printf 'node = 1 127.0.0.1 %d\n' $OFF >"$DIR/client.conf"
export VIRGO_CLIENT_CONF="$DIR/client.conf"
REPS=${REPS:-3}
THREADS=8
PAIRS=${PAIRS:-5000}
{
	echo "### libvirgo set/get vs libmemcached + memcached -t 2"
	echo
	echo "One virgod node (2 worker threads) vs memcached -t 2, both on loopback;"
	echo "$THREADS client threads, each $PAIRS set+get pairs, values verified; median of $REPS alternating runs."
	echo
	echo "| value | virgo ops/s | memcached ops/s | throughput ratio | p99 virgo µs | p99 memcached µs | p99 ratio |"
	echo "|---|---|---|---|---|---|---|"
} >"$OUT"
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
for size in 32 1024 65536; do
	: >"$DIR/v.ops"; : >"$DIR/m.ops"; : >"$DIR/v.p99"; : >"$DIR/m.p99"
	p=$PAIRS; [ $size -ge 65536 ] && p=$((PAIRS / 10))
	i=0
	while [ $i -lt "$REPS" ]; do
		"$BIN" virgo $THREADS $p $size >"$DIR/run" && {
			awk '/ops_per_sec/ {print $2}' "$DIR/run" >>"$DIR/v.ops"
			awk '/p99_us/ {print $2}' "$DIR/run" >>"$DIR/v.p99"; }
		"$BIN" memcached $THREADS $p $size $MCPORT >"$DIR/run" && {
			awk '/ops_per_sec/ {print $2}' "$DIR/run" >>"$DIR/m.ops"
			awk '/p99_us/ {print $2}' "$DIR/run" >>"$DIR/m.p99"; }
		i=$((i + 1))
	done
	vo=$(median <"$DIR/v.ops"); mo=$(median <"$DIR/m.ops")
	vp=$(median <"$DIR/v.p99"); mp=$(median <"$DIR/m.p99")
	awk -v s=$size -v vo="$vo" -v mo="$mo" -v vp="$vp" -v mp="$mp" 'BEGIN {
		printf "| %d B | %d | %d | %.2f | %.0f | %.0f | %.2f |\n", s, vo, mo, vo / mo, vp, mp, vp / mp }' >>"$OUT"
done
cat "$OUT"
