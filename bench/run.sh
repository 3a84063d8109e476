#!/bin/sh
# bench/run.sh <build-dir> - the performance harness behind `make bench`.
#
# Starts the peers the suites compare against (memcached -t 2 on a free
# loopback port, and one virgod built in <build-dir> on a free port
# offset), runs every bench/suite_*.sh it finds, then assembles
# bench/results/latest.md: the machine description, each suite's fragment
# and its plots.  Results are ratios against the peer measured in the same
# run, never absolute pass/fail.
#
# Suite contract (adding a suite needs no edit here):
#   bench/suite_<name>.sh <build-dir> <results-dir>
#   - writes <results-dir>/<name>.md (or suite_<name>.md), a markdown
#     fragment starting with a heading; optionally <name>*.dat data files
#     and <name>*.gp gnuplot scripts (or suite_<name>*...), which run.sh
#     runs inside <results-dir> afterwards (they set their own
#     "set output '<name>....png'"); every such .png is then linked under
#     the fragment.
#   - gets in its environment: BENCH_BUILD, BENCH_RESULTS, BENCH_SECS
#     (seconds per measured run), BENCH_REPS (repetitions),
#     BENCH_MEMCACHED_PORT and BENCH_MEMCACHED_PID (the running memcached
#     -t 2), BENCH_VIRGOD_OFFSET,
#     BENCH_VIRGOD_CONF, BENCH_VIRGOD_PID (the running virgod, threads = 2),
#     BENCH_TOOLS (a directory of helper binaries: mcload).  Suites may
#     start their own peers too; they must stop what they start.
#   - should finish within ~8 minutes; a suite that fails or is killed by
#     the BENCH_SUITE_TIMEOUT (default 900 s) is reported as such.
# For a developer's quicker or controlled runs:
#   BENCH_ONLY="mempool cpupool"  runs only the suites named;
#   BENCH_VIRGOD_EXTRA="cpu_affinity = no"  appends lines to virgod's
#     config (the report shows them), to measure a setting's effect.
set -u
B=${1:?usage: bench/run.sh <build-dir>}
B=$(cd "$B" && pwd)
cd "$(dirname "$0")/.."
ROOT=$(pwd)
R=$ROOT/bench/results
mkdir -p "$R"
rm -f "$R"/*.md "$R"/*.dat "$R"/*.gp "$R"/*.png "$R"/*.log
TMP=$(mktemp -d "${TMPDIR:-/tmp}/virgo-bench-XXXXXX")
PIDS=""
cleanup() {
	for p in $PIDS; do kill -TERM "$p" 2>/dev/null; done
	for p in $PIDS; do wait "$p" 2>/dev/null; done
	rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

. "$ROOT/bench/ports.sh"

# helper binaries for the suites (make bench-bins builds them; this is for
# running run.sh on a tree built without them)
mkdir -p "$B/bench"
[ -x "$B/bench/mcload" ] ||
	${CC:-cc} -O2 -Wall -Wextra -Werror -D_GNU_SOURCE -o "$B/bench/mcload" bench/mcload.c -lssl -lcrypto -lpthread ||
	exit 1

# memcached -t 2, the peer of the memcached port
MC_PORT=21211
while ! port_free $MC_PORT; do MC_PORT=$((MC_PORT + 1)); done
MC_USER=""
[ "$(id -u)" -eq 0 ] && MC_USER="-u nobody"
if ! command -v memcached >/dev/null; then
	echo "bench: memcached is not installed (apt-get install memcached libmemcached-tools)" >&2
	exit 1
fi
memcached $MC_USER -l 127.0.0.1 -p $MC_PORT -U 0 -t 2 -m 2048 -c 4096 >"$R/memcached.log" 2>&1 &
MCPID=$!
PIDS="$PIDS $MCPID"
wait_port $MC_PORT 5 || { echo "bench: memcached did not start" >&2; exit 1; }

# virgod: one node, 2 worker threads (as memcached -t 2), 2 GiB like -m 2048
OFF=1000
while ! offset_free $OFF; do OFF=$((OFF + 1)); done
cat >"$TMP/virgo_cloud.conf" <<CONF
node_id = 1
port_offset = $OFF
threads = 2
mem_limit = 2G
max_value = 1M
pidfile = $TMP/virgod.pid
log_level = warn
${BENCH_VIRGOD_EXTRA:-}
CONF
"$B/virgod" --config "$TMP/virgo_cloud.conf" >"$R/virgod.log" 2>&1 &
VPID=$!
PIDS="$PIDS $VPID"
wait_port $((11211 + OFF)) 5 || { echo "bench: virgod did not start" >&2; cat "$R/virgod.log"; exit 1; }

export BENCH_BUILD="$B" BENCH_RESULTS="$R" BENCH_TOOLS="$B/bench"
export BENCH_SECS="${BENCH_SECS:-2}" BENCH_REPS="${BENCH_REPS:-5}"
export BENCH_MEMCACHED_PORT=$MC_PORT BENCH_MEMCACHED_PID=$MCPID BENCH_VIRGOD_OFFSET=$OFF
export BENCH_VIRGOD_CONF="$TMP/virgo_cloud.conf" BENCH_VIRGOD_PID=$VPID

SUITES=""
for s in bench/suite_*.sh; do
	[ -e "$s" ] || continue
	name=$(basename "$s" .sh)
	name=${name#suite_}
	case " ${BENCH_ONLY:-$name} " in *" $name "*) ;; *) continue ;; esac
	echo "== bench suite $name"
	start=$(date +%s)
	timeout "${BENCH_SUITE_TIMEOUT:-900}" sh "$s" "$B" "$R" >"$R/$name.log" 2>&1
	rc=$?
	cat "$R/$name.log"
	for gp in "$R/$name"*.gp "$R/suite_$name"*.gp; do
		[ -e "$gp" ] || continue
		if command -v gnuplot >/dev/null; then
			(cd "$R" && gnuplot "$(basename "$gp")") >>"$R/$name.log" 2>&1
		else
			echo "gnuplot not installed (apt-get install gnuplot-nox): no plot" >>"$R/$name.log"
		fi
	done
	SUITES="$SUITES $name:$rc:$(($(date +%s) - start))"
	if ! kill -0 $VPID 2>/dev/null; then
		echo "bench: virgod died during suite $name" >&2
		tail -20 "$R/virgod.log" >&2
		exit 1
	fi
done

# assemble the report
cpu=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)
[ -n "$cpu" ] || cpu=$(uname -m)
{
	echo "# VIRGO benchmark results"
	echo
	echo "Ratios are virgod / peer, both measured in this run on this machine"
	echo "(throughput: higher is better; latency: lower is better)."
	echo
	echo "| machine | |"
	echo "|---|---|"
	echo "| date | $(date -u '+%Y-%m-%d %H:%M UTC') |"
	echo "| CPU | $cpu |"
	echo "| cores | $(nproc) |"
	echo "| memory | $(awk '/MemTotal/ {printf "%.1f GiB", $2 / 1048576}' /proc/meminfo) |"
	echo "| kernel | $(uname -sr) |"
	echo "| compiler | $(${CC:-cc} --version | head -1) |"
	echo "| memcached | $(memcached -V 2>/dev/null) |"
	echo "| virgod | $(git describe --always --dirty 2>/dev/null || echo unknown) (build: $B) |"
	[ -n "${BENCH_VIRGOD_EXTRA:-}" ] && echo "| virgod config extra | $(echo "$BENCH_VIRGOD_EXTRA" | tr "\n" ";") |"
	echo
	for entry in $SUITES; do
		name=${entry%%:*}
		rest=${entry#*:}
		rc=${rest%%:*}
		secs=${rest#*:}
		if [ -f "$R/$name.md" ]; then
			cat "$R/$name.md"
		elif [ -f "$R/suite_$name.md" ]; then
			cat "$R/suite_$name.md"
		else
			echo "## $name"
		fi
		echo
		for png in "$R/$name"*.png "$R/suite_$name"*.png; do
			[ -e "$png" ] && echo "![$(basename "$png" .png)]($(basename "$png"))" && echo
		done
		if [ "$rc" != 0 ]; then
			echo "**suite $name failed (exit $rc); see $name.log**"
			echo
		fi
		echo "_suite $name: ${secs} s_"
		echo
	done
} >"$R/latest.md"
echo
echo "== wrote $R/latest.md"
cat "$R/latest.md"
