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
# Every load row also gives the node's and the client's CPU per request
# (the node's from /proc, the client's from /usr/bin/time): client and
# nodes share the CPUs, so TLS's cost in the client lowers the ratio as
# much as the node's does.
#  4. what one TLS record costs in this OpenSSL (bench_tlsrecord: seal +
#     open through OpenSSL's record layer, and the cipher alone through
#     EVP), and from it, per row above, the best TLS/plain ratio the row
#     could show: plain's CPU per request over plain's plus its records'
#     cost (a request and its reply, each sealed once and opened once).
#     The records are measured hot in cache without sockets (the fastest
#     of 5 runs), so the ceilings are generous: in the request loop the
#     same OpenSSL path costs several times more.
# Usage: suite_tls.sh <build-dir> <results-dir>; writes suite_tls.md.
set -eu
B=${1:-build-bench}
R=${2:-bench/results}
mkdir -p "$R"
OUT="$R/suite_tls.md"
BIN="$B/bench/bench_libvirgo"
CONN="$B/bench/bench_tlsconn"
LOAD="$B/bench/mcload"
REC="$B/bench/bench_tlsrecord"
if [ ! -x "$BIN" ] || [ ! -x "$CONN" ] || [ ! -x "$LOAD" ] || [ ! -x "$REC" ]; then
	printf '### TLS vs plain TCP\n\nskipped: needs %s, %s, %s and %s (make bench-bins)\n' "$BIN" "$CONN" "$LOAD" "$REC" >"$OUT"
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
NCPU=$(nproc 2>/dev/null || echo 2)
# OpenSSL's cost per record, before the loads (lines "record|aead SUITE BYTES NS")
"$REC" "$DIR/certs/node1.pem" "$DIR/certs/node1.key" >"$DIR/rec"
# ceiling KIND PLAIN_US BYTES: the best TLS/plain ratio for a row whose
# plain requests cost PLAIN_US µs each (CPU, node and client together)
# with BYTES-byte values, if TLS cost only its records (KIND record:
# through OpenSSL's record layer; aead: the cipher alone), AES-128-GCM as
# the nodes negotiate.  A value travels in 16 KiB records; the other
# direction is one small record.
ceiling() {
	awk -v k="$1" -v p="$2" -v b="$3" '
		$1 == k && $2 == "TLS_AES_128_GCM_SHA256" { ns[$3] = $4 }
		END {
			big = int(b / 16384); rest = b - big * 16384
			r = big * ns[16384] + ns[32]
			if (rest > 0) r += rest <= 32 ? ns[32] : rest <= 1024 ? ns[1024] : ns[16384]
			printf "%.2f", (p > 0 ? p / (p + r / 1000) : 0)
		}' "$DIR/rec"
}
# plain_us OPS_PLAIN CONNS: the plain run's CPU µs per request (node and
# client), measured, or without /usr/bin/time the time per request on
# min(CONNS, CPUs) CPUs
plain_us() {
	if [ -n "$TIME" ]; then
		awk -v a="$(col 1 "$DIR/p.cpu")" -v b="$(col 2 "$DIR/p.cpu")" 'BEGIN { print a + b }'
	else
		awk -v po="$1" -v c="$2" -v n="$NCPU" 'BEGIN { print po ? 1e6 / po * (c < n ? c : n) : 0 }'
	fi
}
THREADS=8
PAIRS=${PAIRS:-5000}
CONNS=${CONNS:-2000}
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
# CPU per request, the node's and the client's, of each run: where TLS's
# extra cost lands (client and nodes share the CPUs, so the client's
# share lowers the ratio as much as the node's)
TIME=""
[ -x /usr/bin/time ] && TIME=/usr/bin/time
HZ=$(getconf CLK_TCK)
node_ticks() { awk '{print $14 + $15}' "/proc/$1/stat" 2>/dev/null || echo 0; }
# measure t|p CMD...: runs CMD against the TLS or plain node (output in
# $DIR/run), noting the node's CPU ticks and the client's CPU seconds
measure() {
	m=$1
	shift
	pid=$PT
	[ "$m" = p ] && pid=$PP
	n0=$(node_ticks $pid)
	if [ -n "$TIME" ]; then
		"$TIME" -f '%U %S' -o "$DIR/time" "$@" >"$DIR/run" || return 1
	else
		"$@" >"$DIR/run" || return 1
		echo "0 0" >"$DIR/time"
	fi
	echo "$n0 $(node_ticks $pid) $(tail -n 1 "$DIR/time")" >"$DIR/cpu"
}
# cpu_note t|p REQUESTS: "node_us client_us" per request of the last run
cpu_note() {
	awk -v n="$2" -v hz="$HZ" '{ printf "%.2f %.2f\n", ($2 - $1) / hz * 1e6 / n, ($3 + $4) * 1e6 / n }' \
		"$DIR/cpu" >>"$DIR/$1.cpu"
}
col() { awk -v c="$1" '{print $c}' "$2" | median; }
# cpu_cells: the CPU columns of a row from $DIR/t.cpu and $DIR/p.cpu
cpu_cells() {
	awk -v nt="$(col 1 "$DIR/t.cpu")" -v np="$(col 1 "$DIR/p.cpu")" -v ct="$(col 2 "$DIR/t.cpu")" \
		-v cp="$(col 2 "$DIR/p.cpu")" -v have="$TIME" 'BEGIN {
		x = (nt - np) + (ct - cp)
		if (have == "") { printf "%.1f / %.1f | - | - | -", nt, np; exit }
		printf "%.1f / %.1f | %.1f / %.1f | %.0f%% | %.2f", nt, np, ct, cp, (x > 0 ? 100 * (ct - cp) / x : 0),
			(nt + ct > 0 ? (np + cp) / (nt + ct) : 0) }'
}
{
	echo "### TLS vs plain TCP (mempool through libvirgo; connection set-up)"
	echo
	echo "Two virgod nodes, 2 worker threads each, one plain and one with mutual TLS 1.3"
	echo "(EC P-256 certificates, AES-GCM; kTLS: $(grep -q '\btls\b' /proc/sys/net/ipv4/tcp_available_ulp 2>/dev/null && echo available || echo 'off, the kernel has no tls ULP loaded'))."
	echo "1 or $THREADS client threads, each $PAIRS set+get pairs on pooled connections, values"
	echo "verified; median of $REPS alternating runs.  Client and nodes share the machine's CPUs:"
	echo "with $THREADS threads the run is CPU-bound, and TLS's per-record work on both sides shows."
	echo
	echo "CPU per request (µs, user + system, medians): the node's and the client's, TLS / plain;"
	echo "the client's share of what TLS adds; plain's CPU per request over TLS's, node and client"
	echo "together (what the throughput ratio comes to when the CPUs are the limit, and steadier"
	echo "than it on a shared machine).  Ceilings (section 4): plain's CPU per request over"
	echo "plain's plus the records' cost, through OpenSSL's record layer or the cipher alone"
	echo "(what kTLS or a leaner record layer would approach on this CPU)."
	echo
	echo "| clients | value | TLS ops/s | plain ops/s | throughput TLS/plain | node CPU µs | client CPU µs | client's share | CPU plain/TLS | ceiling, OpenSSL records | ceiling, AES-GCM alone | p99 µs TLS / plain |"
	echo "|---|---|---|---|---|---|---|---|---|---|---|---|"
} >"$OUT"
for run in "1 32" "1 1024" "$THREADS 32" "$THREADS 1024" "$THREADS 65536"; do
	th=${run% *}
	size=${run#* }
	: >"$DIR/t.ops"; : >"$DIR/p.ops"; : >"$DIR/t.p99"; : >"$DIR/p.p99"; : >"$DIR/t.cpu"; : >"$DIR/p.cpu"
	p=$PAIRS; [ $size -ge 65536 ] && p=$((PAIRS / 10))
	i=0
	while [ $i -lt "$REPS" ]; do
		measure t env VIRGO_CLIENT_CONF="$DIR/ctls.conf" "$BIN" virgo $th $p $size && {
			awk '/ops_per_sec/ {print $2}' "$DIR/run" >>"$DIR/t.ops"
			awk '/p99_us/ {print $2}' "$DIR/run" >>"$DIR/t.p99"
			cpu_note t $((th * p * 2)); }
		measure p env VIRGO_CLIENT_CONF="$DIR/cplain.conf" "$BIN" virgo $th $p $size && {
			awk '/ops_per_sec/ {print $2}' "$DIR/run" >>"$DIR/p.ops"
			awk '/p99_us/ {print $2}' "$DIR/run" >>"$DIR/p.p99"
			cpu_note p $((th * p * 2)); }
		i=$((i + 1))
	done
	to=$(median <"$DIR/t.ops"); po=$(median <"$DIR/p.ops")
	tp=$(median <"$DIR/t.p99"); pp=$(median <"$DIR/p.p99")
	pu=$(plain_us "$po" $th)
	cr=$(ceiling record "$pu" $size); ca=$(ceiling aead "$pu" $size)
	awk -v th=$th -v s=$size -v to="$to" -v po="$po" -v tp="$tp" -v pp="$pp" -v cr=$cr -v ca=$ca \
		-v cc="$(cpu_cells)" 'BEGIN {
		printf "| %d | %d B | %d | %d | **%.2f** | %s | %s | %s | %.0f / %.0f |\n", th, s, to, po, to / po, cc, cr, ca, tp, pp }' >>"$OUT"
done
SECS=${BENCH_SECS:-2}
{
	echo
	echo "Memcached port, get-heavy: bench/mcload, 90% gets and 10% sets over 1000 keys, T threads"
	echo "x C connections, one request in flight on each (${SECS} s runs; TLS: \`memcache_tls = yes\`,"
	echo "mcload -S, the same requests); median of $REPS alternating runs."
	echo
	echo "| threads x conns | value | TLS gets+sets/s | plain /s | throughput TLS/plain | node CPU µs | client CPU µs | client's share | CPU plain/TLS | ceiling, OpenSSL records | ceiling, AES-GCM alone | p99 µs TLS / plain |"
	echo "|---|---|---|---|---|---|---|---|---|---|---|---|"
} >>"$OUT"
for size in 32 1024; do
	"$LOAD" -p $((11211 + OFF_P)) -k 1000 -s $size -P >/dev/null
	"$LOAD" -p $((11211 + OFF_T)) -k 1000 -s $size -P -S "$DIR/certs" >/dev/null
	for run in "1 1" "2 8"; do
		th=${run% *}
		cn=${run#* }
		: >"$DIR/t.ops"; : >"$DIR/p.ops"; : >"$DIR/t.p99"; : >"$DIR/p.p99"; : >"$DIR/t.cpu"; : >"$DIR/p.cpu"
		i=0
		while [ $i -lt "$REPS" ]; do
			measure t "$LOAD" -p $((11211 + OFF_T)) -S "$DIR/certs" -T $th -c $cn -d "$SECS" -g 0.9 \
				-k 1000 -s $size -N && {
				sed -n 's/.*ops_per_s=\([0-9.]*\).*/\1/p' "$DIR/run" >>"$DIR/t.ops"
				sed -n 's/.*p99_us=\([0-9.]*\).*/\1/p' "$DIR/run" >>"$DIR/t.p99"
				cpu_note t "$(awk -v s="$SECS" '{ sub(/.*ops_per_s=/, ""); print int($1 * s) }' "$DIR/run")"; }
			measure p "$LOAD" -p $((11211 + OFF_P)) -T $th -c $cn -d "$SECS" -g 0.9 -k 1000 -s $size \
				-N && {
				sed -n 's/.*ops_per_s=\([0-9.]*\).*/\1/p' "$DIR/run" >>"$DIR/p.ops"
				sed -n 's/.*p99_us=\([0-9.]*\).*/\1/p' "$DIR/run" >>"$DIR/p.p99"
				cpu_note p "$(awk -v s="$SECS" '{ sub(/.*ops_per_s=/, ""); print int($1 * s) }' "$DIR/run")"; }
			i=$((i + 1))
		done
		to=$(median <"$DIR/t.ops"); po=$(median <"$DIR/p.ops")
		tp=$(median <"$DIR/t.p99"); pp=$(median <"$DIR/p.p99")
		pu=$(plain_us "$po" $((th * cn)))
		# TLS's extra CPU per request, node and client (section 4's note)
		[ -n "$TIME" ] && [ "$run" = "1 1" ] && [ $size = 32 ] &&
			awk -v a="$(col 1 "$DIR/t.cpu")" -v b="$(col 2 "$DIR/t.cpu")" -v p="$pu" \
				'BEGIN { print a + b - p }' >"$DIR/extra32"
		cr=$(ceiling record "$pu" $size); ca=$(ceiling aead "$pu" $size)
		awk -v th=$th -v cn=$cn -v s=$size -v to="$to" -v po="$po" -v tp="$tp" -v pp="$pp" -v cr=$cr -v ca=$ca \
			-v cc="$(cpu_cells)" 'BEGIN {
			printf "| %d x %d | %d B | %d | %d | **%.2f** | %s | %s | %s | %.0f / %.0f |\n", th, cn, s, to, po, po ? to / po : 0, cc, cr, ca, tp, pp }' >>"$OUT"
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
{
	echo
	echo "What one TLS 1.3 record costs here (bench_tlsrecord, $(openssl version | cut -d' ' -f1-2)):"
	echo "ns to seal and open one record through OpenSSL's record layer (SSL_write_ex, SSL_read_ex,"
	echo "in memory), and through EVP alone on contexts keyed once (nonce, header, data, tag)."
	echo
	echo "| suite | record bytes | OpenSSL record ns | cipher alone ns | record layer's share |"
	echo "|---|---|---|---|---|"
	awk '$1 == "record" { r[$2 " " $3] = $4; order[++n] = $2 " " $3 }
		$1 == "aead" { a[$2 " " $3] = $4 }
		END { for (i = 1; i <= n; i++) { k = order[i]; split(k, f, " ")
			printf "| %s | %d | %d | %d | %.0f%% |\n", f[1], f[2], r[k], a[k], 100 * (1 - a[k] / r[k]) } }' "$DIR/rec"
	[ -s "$DIR/extra32" ] && awk -v x="$(cat "$DIR/extra32")" '$1 == "record" && $2 == "TLS_AES_128_GCM_SHA256" && $3 == 32 {
		printf "\nIn the memcached-port loop (1 connection, 32 B) TLS added %.1f µs of CPU per request,\n", x
		printf "node and client together, where its two records cost %.1f µs hot here: %.1fx.  (perf puts\n", 2 * $4 / 1000, x / (2 * $4 / 1000)
		printf "nearly all of it in libssl and libcrypto: OpenSSL'"'"'s per-record path costs that much more\n"
		printf "run once per request by a thread that sleeps between requests than in a tight loop.)\n" }' "$DIR/rec"
} >>"$OUT"
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
