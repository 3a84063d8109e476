#!/bin/sh
# bench/suite_mempool.sh <build-dir> <results-dir> - the mempool through
# its memcached-compatible port against memcached -t 2 (both started by
# bench/run.sh, see its contract).
#
# For a get-heavy (90% get) and a set-heavy (10% get) mix and values of
# 32 B, 1 KiB and 64 KiB: throughput with memcaslap (memaslap, Debian's
# libmemcached-tools, saturating: closed loop), then latency percentiles
# with bench/mcload.c (memaslap gives no p99) at a fixed offered load of
# 40% of memcached's measured throughput, so the tail shows service time
# and not the scheduler's queueing at saturation.  Same parameters for
# both servers, BENCH_REPS pairs of back-to-back runs alternating which
# server goes first; the ratio is taken within each pair and the median
# pair ratio reported with its range (this VM's speed drifts by 30%
# over minutes; a ratio of medians taken minutes apart inherits that).
# One more variant runs while mcload drives virgod's VIRGO-protocol
# mempool port in the background (during the memcached runs too, so both
# servers share the machine with the same extra load).
# Writes mempool.md, mempool.dat and mempool.gp (-> mempool.png).
set -u
B=$1
R=$2
SECS=${BENCH_SECS:-2}
REPS=${BENCH_REPS:-5}
MC=$BENCH_MEMCACHED_PORT
VD=$((11211 + BENCH_VIRGOD_OFFSET))
MP=$((30000 + BENCH_VIRGOD_OFFSET))
LOAD=$BENCH_TOOLS/mcload
W=$(mktemp -d "${TMPDIR:-/tmp}/virgo-bench-mp-XXXXXX")
BG=""
trap '[ -n "$BG" ] && kill $BG 2>/dev/null; rm -rf "$W"' EXIT

SLAP=$(command -v memcaslap || command -v memaslap || true)
[ -n "$SLAP" ] || echo "memcaslap not found (apt-get install libmemcached-tools): no throughput figures" >&2

median() { sort -g | awk '{a[NR] = $1} END {if (NR == 0) print 0; else print a[int((NR + 1) / 2)]}'; }

# slap <port> <get ratio> <value size> -> ops/s
slap() {
	[ -n "$SLAP" ] || { echo 0; return; }
	win=10k
	[ "$3" -gt 4096 ] && win=1k # 16 x 1k x 64 KiB fits in 2 GiB
	printf 'key\n32 32 1\nvalue\n%s %s 1\ncmd\n0 %s\n1 %s\n' "$3" "$3" \
		"$(awk -v g="$2" 'BEGIN {printf "%.2f", 1 - g}')" "$2" >"$W/slap.cfg"
	"$SLAP" -s 127.0.0.1:$1 -T 2 -c 16 -w $win -t "${SECS}s" -F "$W/slap.cfg" 2>&1 |
		sed -n 's/.*TPS: \([0-9]*\).*/\1/p' | tail -1
}

# ticks <port>: CPU time (user + system, clock ticks) so far of the server
# behind port: memcached's whole process; for virgod only its memcache/*
# worker threads, so the +mempool rows do not count the mempool's work
ticks() {
	if [ "$1" = "$MC" ]; then
		awk '{print $14 + $15}' /proc/"$BENCH_MEMCACHED_PID"/stat
	else
		for t in /proc/"$BENCH_VIRGOD_PID"/task/*; do
			case $(cat "$t/comm" 2>/dev/null) in memcache/*) cat "$t/stat" ;; esac
		done | awk '{s += $14 + $15} END {print s + 0}'
	fi
}

# lat <port> <get ratio> <value size> <keys> <rate> -> "ops p50 p99 cpu":
# latency at a fixed offered load, and the server's CPU µs per request
# meanwhile (the load is the same for both, so this compares efficiency
# without the scheduler's say in who gets the cores)
lat() {
	t0=$(ticks "$1")
	out=$("$LOAD" -p "$1" -T 2 -c 8 -d "$SECS" -g "$2" -s "$3" -k "$4" -R "$5" -N |
		sed -n 's/ops_per_s=\([0-9.]*\) p50_us=\([0-9.]*\) p99_us=\([0-9.]*\).*/\1 \2 \3/p')
	t1=$(ticks "$1")
	echo "$out" | awk -v t=$((t1 - t0)) -v hz="$HZ" -v s="$SECS" \
		'{printf "%s %s %s %.2f\n", $1, $2, $3, ($1 > 0 ? t * 1e6 / hz / ($1 * s) : 0)}'
}
HZ=$(getconf CLK_TCK)

# pairs <out> <fn> <args...>: REPS times, runs "<fn> <port> <args>" on
# memcached and on virgod, one right after the other (alternating which
# goes first) and writes a line "<memcached's output> <virgod's output>"
# per repetition: ratios are taken within a pair, so a slow patch of the
# shared VM hits both sides of it.
pairs() {
	out=$1 fn=$2
	shift 2
	: >"$out"
	i=0
	while [ $i -lt "$REPS" ]; do
		if [ $((i % 2)) -eq 0 ]; then
			a=$($fn $MC "$@"); b=$($fn $VD "$@")
		else
			b=$($fn $VD "$@"); a=$($fn $MC "$@")
		fi
		echo "$a $b" >>"$out"
		i=$((i + 1))
	done
}

# col <file> <n>: median of column n; pratio <file> <num col> <den col>:
# "median min max" of the per-pair ratios
col() { cut -d' ' -f"$2" "$1" | median; }
pratio() {
	awk -v a="$2" -v b="$3" '$b > 0 {printf "%.4f\n", $a / $b}' "$1" | sort -g |
		awk '{r[NR] = $1} END {if (NR == 0) print "0 0 0"; else printf "%.2f %.2f %.2f\n", r[int((NR + 1) / 2)], r[1], r[NR]}'
}

# run_case <label> <get ratio> <value size>: appends one row to rows.txt
run_case() {
	label=$1 g=$2 sz=$3
	keys=10000
	[ "$sz" -gt 4096 ] && keys=1000
	for port in $MC $VD; do "$LOAD" -p $port -s "$sz" -k $keys -P || exit 1; done
	pairs "$W/t" slap "$g" "$sz"
	mct=$(col "$W/t" 1); vdt=$(col "$W/t" 2)
	rate=$(awk -v t="$mct" 'BEGIN {r = int(t * 0.4); print (r > 1000 ? r : 1000)}')
	pairs "$W/l" lat "$g" "$sz" $keys "$rate"
	# lines: mc ops p50 p99 cpu, vd ops p50 p99 cpu
	mc50=$(col "$W/l" 2); vd50=$(col "$W/l" 6)
	mc99=$(col "$W/l" 3); vd99=$(col "$W/l" 7)
	mccpu=$(col "$W/l" 4); vdcpu=$(col "$W/l" 8)
	tr=$(pratio "$W/t" 2 1 | tr ' ' ,); lr=$(pratio "$W/l" 7 3 | tr ' ' ,)
	cr=$(pratio "$W/l" 8 4 | tr ' ' ,)
	echo "$label $sz $mct $vdt $rate $mc50 $vd50 $mc99 $vd99 $tr $lr $mccpu $vdcpu $cr" >>"$W/rows.txt"
	echo "$label $sz: memcaslap mc=$mct vd=$vdt (paired ratio $tr); at $rate/s (mcload achieved mc=$(col "$W/l" 1) vd=$(col "$W/l" 5)) p50 mc=$mc50 vd=$vd50 p99 mc=$mc99 vd=$vd99 (paired ratio $lr) CPU us/req mc=$mccpu vd=$vdcpu (paired ratio $cr)" >&2
}

: >"$W/rows.txt"
for mix in get set; do
	g=0.9
	[ $mix = set ] && g=0.1
	for sz in 32 1024 65536; do
		run_case "$mix-heavy" $g $sz
	done
done
# the get-heavy 32 B and 1 KiB cases again, with the VIRGO mempool port serving a fixed
# 20000 gets/s of 1 KiB (paced, so both servers share the machine with the
# same extra work)
"$LOAD" -p $MP -M -T 1 -c 8 -s 1024 -R 20000 -d 100000 >/dev/null 2>&1 &
BG=$!
run_case "get-heavy+mempool" 0.9 32
run_case "get-heavy+mempool" 0.9 1024
kill $BG 2>/dev/null
wait $BG 2>/dev/null
BG=""

first() { echo "$1" | cut -d, -f1; }
range() { echo "$1" | awk -F, '{printf "%s-%s", $2, $3}'; }
human() { awk -v n="$1" 'BEGIN {if (n >= 1024) printf "%d KiB", n / 1024; else printf "%d B", n}'; }
{
	echo "## mempool: the memcached port vs memcached -t 2"
	echo
	echo "Throughput: memcaslap (-T 2 -c 16, closed loop, ${SECS} s runs).  Latency: bench/mcload"
	echo "(2 threads x 8 connections, ${SECS} s runs) offering a fixed load of 40% of memcached's"
	echo "throughput to both.  $REPS pairs of back-to-back runs, alternating which server goes"
	echo "first.  Both servers have 2 worker threads for this port (virgod's other ports have"
	echo "their own) and 2 GiB; the load generators share the same 2 cores.  The +mempool rows"
	echo "run while virgod's VIRGO mempool port serves 20000 gets/s of 1 KiB (during the"
	echo "memcached runs too)."
	echo
	echo "| mix | value | memcached ops/s | virgod ops/s | **throughput ratio** (min-max) | latency at ops/s | p50 µs mc / vd | p99 µs mc / vd | **p99 ratio** (min-max) | server CPU µs/req mc / vd | **CPU ratio** (min-max) |"
	echo "|---|---|---|---|---|---|---|---|---|---|---|"
	while read -r label sz mct vdt rate mc50 vd50 mc99 vd99 tr lr mccpu vdcpu cr; do
		echo "| $label | $(human $sz) | $mct | $vdt | **$(first $tr)** ($(range $tr)) | $rate | $mc50 / $vd50 | $mc99 / $vd99 | **$(first $lr)** ($(range $lr)) | $mccpu / $vdcpu | **$(first $cr)** ($(range $cr)) |"
	done <"$W/rows.txt"
	echo
	echo "Ratios are virgod/memcached within each pair of back-to-back runs, then the"
	echo "median over the $REPS pairs (min-max in brackets).  Throughput ratio >= 1.0:"
	echo "virgod at least as fast; p99 ratio <= 1.0: virgod's tail no worse; CPU ratio"
	echo "<= 1.0: virgod spent no more CPU per request at the same offered load (memcached:"
	echo "its process; virgod: its memcache/* worker threads, so the +mempool rows leave the"
	echo "mempool's own work out)."
} >"$R/mempool.md"
n=0
while read -r label sz mct vdt rate mc50 vd50 mc99 vd99 tr lr mccpu vdcpu cr; do
	echo "$n \"$label $(human $sz | tr -d ' ')\" $(first $tr) $(first $lr) $(first $cr)"
	n=$((n + 1))
done <"$W/rows.txt" >"$R/mempool.dat"
cat >"$R/mempool.gp" <<'GP'
set terminal png size 1100,560
set output 'mempool.png'
set title 'virgod memcached port / memcached -t 2 (same run, same machine)'
set style data histogram
set style histogram clustered gap 1
set style fill solid 0.8 border -1
set yrange [0:*]
set offsets 0, 0, graph 0.12, 0
set ylabel 'ratio virgod / memcached'
set xtics rotate by -25 offset -2,0
set key below horizontal
set arrow from graph 0, first 1 to graph 1, first 1 nohead dt 2
plot 'mempool.dat' using 3:xtic(2) title 'throughput (>= 1 better)', '' using 4 title 'p99 latency (<= 1 better)', '' using 5 title 'server CPU per request (<= 1 better)'
GP
