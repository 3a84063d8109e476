#!/bin/sh
# Bench suite: what TLS costs.  Two virgod nodes built the same and
# configured the same (2 worker threads), one plain, one with mutual TLS
# (certificates from `virgo certs init`); alternating runs, medians.
#  1. mempool set/get through libvirgo (bench_libvirgo: 8 threads, pooled
#     connections), TLS vs plain throughput and p99: the target is TLS at
#     least 0.85x plain (Redis loses 23% with TLS, redis#7595).
#  2. connection set-up (bench_tlsconn: connect, handshake, one ping,
#     close): plain, TLS full handshake, TLS with session resumption; and
#     full handshakes per second against openssl s_server (the peer).
#  3. the memcached port, get-heavy (bench/mcload: 90% gets over 1000 keys,
#     one request in flight per connection), TLS (memcache_tls = yes; mcload
#     -S) vs plain, the same requests on the same number of connections.
#  4. a cloudfs copy (virgo cp) of CLOUDFS_MB MiB (default 1024) to the node
#     and back, TLS vs plain (cloudfs over TLS: copied reads, no sendfile).
# The memcached port stays plain TCP by default (memcached clients); the
# TLS node here turns memcache_tls on to measure what it costs.
# kTLS is off on a kernel without the tls module: user-space TLS measured.
# Usage: suite_tls.sh <build-dir> <results-dir>; writes suite_tls.md.
set -eu
B=${1:-build-bench}
R=${2:-bench/results}
mkdir -p "$R"
OUT="$R/suite_tls.md"
BIN="$B/bench/bench_libvirgo"
CONN="$B/bench/bench_tlsconn"
LOAD="$B/bench/mcload"
if [ ! -x "$BIN" ] || [ ! -x "$CONN" ] || [ ! -x "$LOAD" ]; then
	printf '### TLS vs plain TCP\n\nskipped: needs %s, %s and %s (make bench-bins)\n' "$BIN" "$CONN" "$LOAD" >"$OUT"
	exit 0
fi
DIR=$(mktemp -d)
. "$(dirname "$0")/ports.sh"
OFF_P=1340
while ! offset_free $OFF_P; do OFF_P=$((OFF_P + 1)); done
OFF_T=$((OFF_P + 1))
while ! offset_free $OFF_T; do OFF_T=$((OFF_T + 1)); done
PP="" PT=""
cleanup() { kill $PP $PT 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$DIR"; }
trap cleanup EXIT
"$B/virgo" certs init "$DIR/certs" >/dev/null
printf 'threads = 2\nport_offset = %d\npidfile = %s/p.pid\n' $OFF_P "$DIR" >"$DIR/plain.conf"
printf 'threads = 2\nport_offset = %d\npidfile = %s/t.pid\ntls_cert = %s/certs/node1.pem\ntls_key = %s/certs/node1.key\ntls_ca = %s/certs/ca.pem\nmemcache_tls = yes\n' \
	$OFF_T "$DIR" "$DIR" "$DIR" "$DIR" >"$DIR/tls.conf"
mkdir "$DIR/pexp" "$DIR/texp"
echo "cloudfs_export_root = $DIR/pexp" >>"$DIR/plain.conf"
echo "cloudfs_export_root = $DIR/texp" >>"$DIR/tls.conf"
"$B/virgod" -c "$DIR/plain.conf" 2>"$DIR/p.log" &
PP=$!
"$B/virgod" -c "$DIR/tls.conf" 2>"$DIR/t.log" &
PT=$!
n=0
until [ -s "$DIR/p.pid" ] && [ -s "$DIR/t.pid" ]; do
	n=$((n + 1)); [ $n -lt 500 ] || { echo "nodes did not start"; cat "$DIR"/*.log; exit 1; }
	sleep 0.02
done
printf 'node = 1 127.0.0.1 %d\n' $OFF_P >"$DIR/cplain.conf"
printf 'node = 1 127.0.0.1 %d\ntls_ca = %s/certs/ca.pem\ntls_cert = %s/certs/client.pem\ntls_key = %s/certs/client.key\n' \
	$OFF_T "$DIR" "$DIR" "$DIR" >"$DIR/ctls.conf"
REPS=${REPS:-${BENCH_REPS:-3}}
THREADS=8
PAIRS=${PAIRS:-5000}
CONNS=${CONNS:-2000}
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
{
	echo "### TLS vs plain TCP (mempool through libvirgo; connection set-up)"
	echo
	echo "Two virgod nodes, 2 worker threads each, one plain and one with mutual TLS 1.3"
	echo "(EC P-256 certificates, AES-GCM; kTLS: $(grep -q '\btls\b' /proc/sys/net/ipv4/tcp_available_ulp 2>/dev/null && echo available || echo 'off, the kernel has no tls ULP loaded'))."
	echo "1 or $THREADS client threads, each $PAIRS set+get pairs on pooled connections, values"
	echo "verified; median of $REPS alternating runs.  Client and nodes share the machine's CPUs:"
	echo "with $THREADS threads the run is CPU-bound, and TLS's per-record work on both sides shows."
	echo
	echo "| clients | value | TLS ops/s | plain ops/s | throughput TLS/plain | p99 TLS µs | p99 plain µs |"
	echo "|---|---|---|---|---|---|---|"
} >"$OUT"
for run in "1 32" "1 1024" "$THREADS 32" "$THREADS 1024" "$THREADS 65536"; do
	th=${run% *}
	size=${run#* }
	: >"$DIR/t.ops"; : >"$DIR/p.ops"; : >"$DIR/t.p99"; : >"$DIR/p.p99"
	p=$PAIRS; [ $size -ge 65536 ] && p=$((PAIRS / 10))
	i=0
	while [ $i -lt "$REPS" ]; do
		VIRGO_CLIENT_CONF="$DIR/ctls.conf" "$BIN" virgo $th $p $size >"$DIR/run" && {
			awk '/ops_per_sec/ {print $2}' "$DIR/run" >>"$DIR/t.ops"
			awk '/p99_us/ {print $2}' "$DIR/run" >>"$DIR/t.p99"; }
		VIRGO_CLIENT_CONF="$DIR/cplain.conf" "$BIN" virgo $th $p $size >"$DIR/run" && {
			awk '/ops_per_sec/ {print $2}' "$DIR/run" >>"$DIR/p.ops"
			awk '/p99_us/ {print $2}' "$DIR/run" >>"$DIR/p.p99"; }
		i=$((i + 1))
	done
	to=$(median <"$DIR/t.ops"); po=$(median <"$DIR/p.ops")
	tp=$(median <"$DIR/t.p99"); pp=$(median <"$DIR/p.p99")
	awk -v th=$th -v s=$size -v to="$to" -v po="$po" -v tp="$tp" -v pp="$pp" 'BEGIN {
		printf "| %d | %d B | %d | %d | **%.2f** | %.0f | %.0f |\n", th, s, to, po, to / po, tp, pp }' >>"$OUT"
done
SECS=${BENCH_SECS:-2}
{
	echo
	echo "Memcached port, get-heavy: bench/mcload, 90% gets and 10% sets over 1000 keys, T threads"
	echo "x C connections, one request in flight on each (${SECS} s runs; TLS: \`memcache_tls = yes\`,"
	echo "mcload -S, the same requests); median of $REPS alternating runs."
	echo
	echo "| threads x conns | value | TLS gets+sets/s | plain /s | throughput TLS/plain | p99 TLS µs | p99 plain µs |"
	echo "|---|---|---|---|---|---|---|"
} >>"$OUT"
for size in 32 1024; do
	"$LOAD" -p $((11211 + OFF_P)) -k 1000 -s $size -P >/dev/null
	"$LOAD" -p $((11211 + OFF_T)) -k 1000 -s $size -P -S "$DIR/certs" >/dev/null
	for run in "1 1" "2 8"; do
		th=${run% *}
		cn=${run#* }
		: >"$DIR/t.ops"; : >"$DIR/p.ops"; : >"$DIR/t.p99"; : >"$DIR/p.p99"
		i=0
		while [ $i -lt "$REPS" ]; do
			"$LOAD" -p $((11211 + OFF_T)) -S "$DIR/certs" -T $th -c $cn -d "$SECS" -g 0.9 \
				-k 1000 -s $size -N >"$DIR/run" && {
				sed -n 's/.*ops_per_s=\([0-9.]*\).*/\1/p' "$DIR/run" >>"$DIR/t.ops"
				sed -n 's/.*p99_us=\([0-9.]*\).*/\1/p' "$DIR/run" >>"$DIR/t.p99"; }
			"$LOAD" -p $((11211 + OFF_P)) -T $th -c $cn -d "$SECS" -g 0.9 -k 1000 -s $size \
				-N >"$DIR/run" && {
				sed -n 's/.*ops_per_s=\([0-9.]*\).*/\1/p' "$DIR/run" >>"$DIR/p.ops"
				sed -n 's/.*p99_us=\([0-9.]*\).*/\1/p' "$DIR/run" >>"$DIR/p.p99"; }
			i=$((i + 1))
		done
		to=$(median <"$DIR/t.ops"); po=$(median <"$DIR/p.ops")
		tp=$(median <"$DIR/t.p99"); pp=$(median <"$DIR/p.p99")
		awk -v th=$th -v cn=$cn -v s=$size -v to="$to" -v po="$po" -v tp="$tp" -v pp="$pp" 'BEGIN {
			printf "| %d x %d | %d B | %d | %d | **%.2f** | %.0f | %.0f |\n", th, cn, s, to, po, po ? to / po : 0, tp, pp }' >>"$OUT"
	done
done
{
	echo
	echo "Connection set-up: connect + handshake + one ping + close, $CONNS in a row,"
	echo "one client thread; median of $REPS runs."
	echo
	echo "| connection | µs per connection | vs plain |"
	echo "|---|---|---|"
} >>"$OUT"
for mode in plain full resume; do : >"$DIR/c.$mode"; done
i=0
while [ $i -lt "$REPS" ]; do
	"$CONN" plain $((30000 + OFF_P)) $CONNS | awk '/us_per_conn/ {print $2}' >>"$DIR/c.plain"
	for mode in full resume; do
		"$CONN" $mode $((30000 + OFF_T)) $CONNS "$DIR/certs/ca.pem" "$DIR/certs/client.pem" \
			"$DIR/certs/client.key" >"$DIR/run" || true
		awk '/us_per_conn/ {print $2}' "$DIR/run" >>"$DIR/c.$mode"
		[ $mode = resume ] && awk '/resumed/ {print $2}' "$DIR/run" >"$DIR/resumed"
	done
	i=$((i + 1))
done
cp=$(median <"$DIR/c.plain"); cf=$(median <"$DIR/c.full"); cr=$(median <"$DIR/c.resume")
# the peer for handshakes: openssl s_server with the same certificates,
# both driven by openssl s_time -new (full handshakes; its -reuse does not
# wait for TLS 1.3's post-handshake ticket, so it is not measured)
SPORT=$((30000 + OFF_T + 7))
while ! port_free $SPORT; do SPORT=$((SPORT + 1)); done
openssl s_server -accept $SPORT -cert "$DIR/certs/node1.pem" -key "$DIR/certs/node1.key" \
	-CAfile "$DIR/certs/ca.pem" -Verify 2 -tls1_3 -quiet -naccept 1000000 >/dev/null 2>&1 &
SPID=$!
PT="$PT $SPID"
wait_port $SPORT 5 || true
rate() { # rate PORT -new: handshakes per second (s_time, 3 s)
	timeout 20 openssl s_time -connect 127.0.0.1:$1 $2 -time 3 -cert "$DIR/certs/client.pem" \
		-key "$DIR/certs/client.key" -CAfile "$DIR/certs/ca.pem" 2>/dev/null |
		awk '/connections in [0-9.]+ real seconds/ {print $1 / $4; exit}'
}
for k in vn sn; do : >"$DIR/r.$k"; done
i=0
while [ $i -lt "$REPS" ]; do
	rate $((30000 + OFF_T)) -new >>"$DIR/r.vn"; rate $SPORT -new >>"$DIR/r.sn"
	i=$((i + 1))
done
vn=$(median <"$DIR/r.vn"); sn=$(median <"$DIR/r.sn")
awk -v p="$cp" -v f="$cf" -v r="$cr" -v n="$(cat "$DIR/resumed")" -v c=$CONNS 'BEGIN {
	printf "| plain TCP | %.0f | 1.00 |\n", p
	printf "| TLS 1.3, full handshake (mutual) | %.0f | %.2f |\n", f, f / p
	printf "| TLS 1.3, session resumed (%d of %d) | %.0f | %.2f |\n", n, c, r, r / p
	printf "\nResumption saves %.0f%% of a full handshake.\n", 100 * (1 - r / f) }' >>"$OUT"
awk -v vn="${vn:-0}" -v sn="${sn:-0}" 'BEGIN {
	printf "\nHandshakes per second, `openssl s_time` (3 s, one client) against virgod and against\n"
	printf "`openssl s_server` with the same certificates (mutual TLS 1.3), median of runs:\n\n"
	printf "| handshake | virgod /s | s_server /s | **virgod/s_server** |\n|---|---|---|---|\n"
	printf "| full (-new) | %.0f | %.0f | **%.2f** |\n", vn, sn, sn ? vn / sn : 0 }' >>"$OUT"
MB=${CLOUDFS_MB:-1024}
now_ms() { echo $(($(date +%s%N) / 1000000)); }
# cp_ms CONF SRC DST: milliseconds one `virgo cp` took (0 when it failed)
cp_ms() {
	t0=$(now_ms)
	if "$B/virgo" -c "$1" cp "$2" "$3" >/dev/null 2>"$DIR/cp.err"; then
		echo $(($(now_ms) - t0))
	else
		cat "$DIR/cp.err" >&2
		echo 0
	fi
}
head -c $((MB * 1048576)) /dev/urandom >"$DIR/src.bin"
for k in tput pput tget pget; do : >"$DIR/f.$k"; done
i=0
while [ $i -lt "$REPS" ]; do
	cp_ms "$DIR/ctls.conf" "$DIR/src.bin" node1:/big.bin >>"$DIR/f.tput"
	cp_ms "$DIR/cplain.conf" "$DIR/src.bin" node1:/big.bin >>"$DIR/f.pput"
	cp_ms "$DIR/ctls.conf" node1:/big.bin "$DIR/back.bin" >>"$DIR/f.tget"
	cmp -s "$DIR/src.bin" "$DIR/back.bin" || echo "cloudfs over TLS: the copy read back differs" >&2
	rm -f "$DIR/back.bin"
	cp_ms "$DIR/cplain.conf" node1:/big.bin "$DIR/back.bin" >>"$DIR/f.pget"
	rm -f "$DIR/back.bin"
	i=$((i + 1))
done
rm -f "$DIR/src.bin" "$DIR/pexp/big.bin" "$DIR/texp/big.bin"
{
	echo
	echo "cloudfs: \`virgo cp\` of a $MB MiB file (random bytes) to the node and back, one client;"
	echo "the node's export on the local disk; median of $REPS alternating runs."
	echo
	echo "| copy | TLS MiB/s | plain MiB/s | **TLS/plain** |"
	echo "|---|---|---|---|"
} >>"$OUT"
for d in put get; do
	tm=$(median <"$DIR/f.t$d"); pm=$(median <"$DIR/f.p$d")
	awk -v d=$d -v mb=$MB -v t="$tm" -v p="$pm" 'BEGIN {
		tr = t ? mb * 1000 / t : 0; pr = p ? mb * 1000 / p : 0
		printf "| %s | %.0f | %.0f | **%.2f** |\n", d == "put" ? "local to node" : "node to local", tr, pr, pr ? tr / pr : 0 }' >>"$OUT"
done
cat "$OUT"
