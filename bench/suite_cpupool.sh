#!/bin/sh
# Bench suite for the cpupool (virgo_clone/virgo_run), on a local cluster of
# 4 virgod nodes on loopback.  Usage: suite_cpupool.sh <build-dir> <results-dir>
# (standalone or from bench/run.sh).  Writes <results-dir>/suite_cpupool.md:
#  1. k virgo_sleep jobs of skewed lengths per placement policy: makespan and
#     max/min per-node load, as ratios against `random`; then k calls of a
#     function that runs 4x slower on one node (heterogeneous nodes);
#  2. the notes' §890 expected-requests-per-node formula for the PRG
#     balancer against request counts measured with the random policy;
#  3. a trivial plugin function's round trip against a bare TCP echo round
#     trip, and virgo_run of a program against a local fork+exec+wait of it.
set -eu
B=${1:-build-bench}
R=${2:-bench/results}
mkdir -p "$R"
OUT="$R/suite_cpupool.md"
BIN="$B/bench/bench_cpupool"
PLUGIN="$B/bench/libvbench_plugin.so"
if [ ! -x "$BIN" ] || [ ! -f "$PLUGIN" ] || [ ! -f "$B/bench/libvbench_plugin_slow.so" ]; then
	printf '### cpupool\n\nskipped: needs %s and %s (make bench-bins)\n' "$BIN" "$PLUGIN" >"$OUT"
	exit 0
fi
PDIR=$(cd "$(dirname "$PLUGIN")" && pwd)
DIR=$(mktemp -d)
OFF=${OFF:-1330}
N=4
PIDS=""
cleanup() {
	for p in $PIDS; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	rm -rf "$DIR"
}
trap cleanup EXIT INT TERM
: >"$DIR/client.conf"
for i in 1 2 3 4; do
	# node 4 is the weaker machine: one worker, and vbench_work 4x slower
	w=2; lib=libvbench_plugin.so
	[ $i -eq 4 ] && { w=1; lib=libvbench_plugin_slow.so; }
	cat >"$DIR/n$i.conf" <<EOC
node_id = $i
port_offset = $((OFF + i - 1))
pidfile = $DIR/n$i.pid
threads = 1
cpu_workers = $w
cpu_queue = 512
job_timeout_ms = 60000
allow_exec = true, echo
plugins = $PDIR/$lib
EOC
	"$B/virgod" -c "$DIR/n$i.conf" 2>"$DIR/n$i.log" &
	PIDS="$PIDS $!"
	echo "node = $i 127.0.0.1 $((OFF + i - 1))" >>"$DIR/client.conf"
done
n=0
for i in 1 2 3 4; do
	until [ -f "$DIR/n$i.pid" ]; do
		n=$((n + 1)); [ $n -lt 1000 ] || { cat "$DIR/n$i.log"; exit 1; }
		sleep 0.01
	done
done
cat >>"$DIR/client.conf" <<EOC
clone_timeout_ms = 120000
load_max_age_ms = ${LOAD_AGE_MS:-20}
seed = 1
EOC
export VIRGO_CLIENT_CONF="$DIR/client.conf"
REPS=${REPS:-3}
K=${K:-240}
THREADS=${THREADS:-7}
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

# 1. placement -------------------------------------------------------------
# place <tag> [fn]: every policy, REPS runs; then a markdown table
place() {
	tag=$1; fn=${2:-}
	for pol in random round_robin least_loaded power_of_two learned; do
		: >"$DIR/$tag.$pol.mk"; : >"$DIR/$tag.$pol.mm"
		r=0
		while [ $r -lt "$REPS" ]; do
			"$BIN" place $pol "$K" "$THREADS" $((r + 11)) $fn >"$DIR/run"
			awk '/makespan_ms/ {print $2}' "$DIR/run" >>"$DIR/$tag.$pol.mk"
			# load of a node = its work per cpupool worker
			awk '/^node/ {l = $4 / ($8 > 0 ? $8 : 1); if (max == "" || l > max) max = l
				      if (min == "" || l < min) min = l}
			     END {print (min > 0 ? max / min : 999)}' "$DIR/run" >>"$DIR/$tag.$pol.mm"
			awk '/^node/ {printf "%s%s", sep, $6; sep="/"} END {print ""}' "$DIR/run" >"$DIR/$tag.$pol.jobs"
			r=$((r + 1))
		done
	done
	rmk=$(median <"$DIR/$tag.random.mk"); rmm=$(median <"$DIR/$tag.random.mm")
	echo "| policy | makespan ms | makespan vs random | max/min node load | max/min vs random | jobs per node 1/2/3/4 (last run) |"
	echo "|---|---|---|---|---|---|"
	for pol in random round_robin least_loaded power_of_two learned; do
		mk=$(median <"$DIR/$tag.$pol.mk"); mm=$(median <"$DIR/$tag.$pol.mm")
		awk -v p=$pol -v mk="$mk" -v mm="$mm" -v rmk="$rmk" -v rmm="$rmm" -v j="$(cat "$DIR/$tag.$pol.jobs")" \
			'BEGIN { printf "| %s | %.0f | %.2f | %.2f | %.2f | %s |\n", p, mk, mk / rmk, mm, mm / rmm, j }'
	done
	echo
}
{
	echo "### cpupool: placement of skewed jobs"
	echo
	echo "$K \`virgo_sleep\` jobs (80% 5 ms, 15% 40 ms, 5% 200 ms; the same seeded lists for every"
	echo "policy) from $THREADS client threads to $N nodes with 2+2+2+1 cpupool workers (node 4 is the"
	echo "weaker machine); \`load_max_age_ms = ${LOAD_AGE_MS:-20}\`.  Median of $REPS runs.  A node's load = the"
	echo "job time it ran per worker; max/min over the nodes (1.00 = load even for the capacity)."
	echo
	place skew
	echo "Heterogeneous nodes: $K calls of plugin function \`vbench_work\`, 10 ms on nodes 1-3 and 40 ms on"
	echo "node 4 (its slow build); load = call time per worker.  This is what \`learned\` is for."
	echo
	place hetero vbench_work
} >"$OUT"

# 2. §890 -------------------------------------------------------------------
PK=${PRG_K:-20}
PT=${PRG_TRIALS:-150}
"$BIN" prg "$PK" "$PT" >"$DIR/prg"
awk -v N=$N -v k="$PK" -v T="$PT" '
	/^trial/ { for (i = 2; i <= NF; i++) { s += $i; ss += $i * $i; c++; if ($i > mx) mx = $i } }
	END {
		f = (N ^ (k + 2) - k * N ^ 2 + k * N - 1) / (N ^ (k + 3) - 2 * N ^ (k + 2) + N ^ (k + 1))
		m = s / c; sd = sqrt(ss / c - m * m)
		printf "### §890: expected requests per node under the PRG balancer\n\n"
		printf "%d trials of k = %d `virgo_cloud_test` calls with `random` over N = %d nodes (%d calls).\n\n", T, k, N, T * k
		printf "| quantity | value |\n|---|---|\n"
		printf "| notes'"'"' formula (N^(k+2) - kN^2 + kN - 1) / (N^(k+3) - 2N^(k+2) + N^(k+1)) | %.3f |\n", f
		printf "| binomial mean k/N | %.3f |\n", k / N
		printf "| measured mean requests per node | %.3f |\n", m
		printf "| measured std dev (binomial: sqrt(k(1/N)(1-1/N)) = %.3f) | %.3f |\n", sqrt(k * (1 / N) * (1 - 1 / N)), sd
		printf "| largest count one node got in a trial | %d |\n\n", mx
		verdict = (m > f * 2 || m < f / 2) ? "does **not** match" : "matches"
		printf "Verdict: the formula %s the measurement (it tends to N/(N-1)^2 = %.3f for any k: it is sum x/N^x over x = 1..k, which treats 1/N^x as the probability of x requests; the count per node is Binomial(k, 1/N), mean k/N).\n\n", verdict, N / ((N - 1) ^ 2)
	}' "$DIR/prg" >>"$OUT"

# 3. latency ratios ---------------------------------------------------------------
RN=${RTT_N:-3000}
"$BIN" rtt "$RN" vbench_noop >"$DIR/rtt"
"$BIN" rtt "$RN" virgo_cloud_test >"$DIR/rtt_bi"
EN=${EXEC_N:-300}
TRUE=/usr/bin/true; [ -x $TRUE ] || TRUE=/bin/true
"$BIN" exec "$EN" "$TRUE" >"$DIR/exec"
"$BIN" exec "$EN" /bin/echo hello >"$DIR/exec_echo"
g() { awk -v k="$1" '$1 == k {print $2}' "$2"; }
{
	echo "### cpupool: round trips over loopback"
	echo
	echo "| what | virgo median µs | peer median µs | ratio | virgo p99 µs | peer p99 µs |"
	echo "|---|---|---|---|---|---|"
	awk -v a="$(g clone_median_us "$DIR/rtt")" -v b="$(g echo_median_us "$DIR/rtt")" \
	    -v c="$(g clone_p99_us "$DIR/rtt")" -v d="$(g echo_p99_us "$DIR/rtt")" -v n="$RN" \
		'BEGIN { printf "| plugin fn vbench_noop (1 B) vs bare TCP echo (1 B), %d each | %.1f | %.1f | %.2f | %.1f | %.1f |\n", n, a, b, a / b, c, d }'
	awk -v a="$(g clone_median_us "$DIR/rtt_bi")" -v b="$(g echo_median_us "$DIR/rtt_bi")" \
	    -v c="$(g clone_p99_us "$DIR/rtt_bi")" -v d="$(g echo_p99_us "$DIR/rtt_bi")" \
		'BEGIN { printf "| built-in virgo_cloud_test vs bare TCP echo | %.1f | %.1f | %.2f | %.1f | %.1f |\n", a, b, a / b, c, d }'
	for f in exec exec_echo; do
		what="virgo run $TRUE vs local fork+exec+wait"; [ $f = exec_echo ] && what="virgo run /bin/echo hello vs local fork+exec+wait"
		awk -v w="$what, $EN each" -v a="$(g run_median_us "$DIR/$f")" -v b="$(g local_median_us "$DIR/$f")" \
		    -v c="$(g run_p99_us "$DIR/$f")" -v d="$(g local_p99_us "$DIR/$f")" \
			'BEGIN { printf "| %s | %.1f | %.1f | %.2f | %.1f | %.1f |\n", w, a, b, a / b, c, d }'
	done
	echo
	echo "Targets (PRODUCT.md): plugin round trip within a few times a TCP echo; executable within 1.5x."
} >>"$OUT"
cat "$OUT"
