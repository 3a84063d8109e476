#!/bin/sh
# bench/suite_capacity.sh <build-dir> <results-dir> - how many items the
# memcached port keeps in the same memory limit as memcached: starts its
# own memcached -m 64 -t 2 and a virgod with mem_limit = 64M (so the
# shared 2 GiB peers of bench/run.sh are not disturbed), writes twice as
# many keys as fit, of 32 B, 1 KiB and 64 KiB values, and reads back
# curr_items and the process's resident memory (VmRSS).  Ratios
# virgod/memcached: items kept (>= 1 better), resident bytes per item
# kept (<= 1 better).  Writes capacity.md.  Stops what it starts.
set -u
B=$1
R=$2
W=$(mktemp -d "${TMPDIR:-/tmp}/virgo-bench-cap-XXXXXX")
PIDS=""
trap 'for p in $PIDS; do kill $p 2>/dev/null; done; wait 2>/dev/null; rm -rf "$W"' EXIT

. "$(dirname "$0")/ports.sh"
stat_of() { # port name
	printf 'stats\r\nquit\r\n' | nc -q1 127.0.0.1 "$1" | tr -d '\r' | awk -v k="$2" '$2 == k {print $3}'
}
rss_kb() { awk '/^VmRSS:/ {print $2}' /proc/"$1"/status; }

pick_ports 23211 1200

# fill <port> <size> <keys>: pipelined noreply sets of keys k:0.., then
# version and quit, so it returns once the server has taken them all
fill() {
	awk -v n="$3" -v sz="$2" 'BEGIN {
		v = "v"; while (length(v) < sz) v = v v; v = substr(v, 1, sz) # (mawk caps sprintf)
		for (i = 0; i < n; i++) printf "set k:%d 0 0 %d noreply\r\n%s\r\n", i, sz, v
		printf "version\r\nquit\r\n"
	}' | timeout 120 nc 127.0.0.1 "$1" | grep -q '^VERSION' || echo "fill of port $1 failed" >&2
}

# start_pair: a fresh memcached and virgod (empty caches) per value size
start_pair() {
	memcached $MC_USER -l 127.0.0.1 -p $MCP -U 0 -t 2 -m 64 -c 1024 >"$W/mc.log" 2>&1 &
	MCPID=$!
	printf 'node_id = 1\nport_offset = %d\nthreads = 2\nmem_limit = 64M\nmax_value = 1M\nlog_level = warn\n' \
		$OFF >"$W/v.conf"
	"$B/virgod" --config "$W/v.conf" >"$W/v.log" 2>&1 &
	VDPID=$!
	PIDS="$MCPID $VDPID"
	wait_port $MCP 5 || { echo "memcached did not start" >&2; exit 1; }
	wait_port $VDP 5 || { echo "virgod did not start" >&2; cat "$W/v.log" >&2; exit 1; }
}
stop_pair() {
	kill $MCPID $VDPID 2>/dev/null
	wait $MCPID $VDPID 2>/dev/null
	PIDS=""
}

: >"$W/rows"
for sz in 32 1024 65536; do
	case $sz in
	32) keys=1200000 ;;
	1024) keys=130000 ;;
	*) keys=2000 ;;
	esac
	start_pair
	r0mc=$(rss_kb $MCPID) r0vd=$(rss_kb $VDPID)
	fill $MCP $sz $keys
	fill $VDP $sz $keys
	imc=$(stat_of $MCP curr_items) ivd=$(stat_of $VDP curr_items)
	emc=$(stat_of $MCP evictions) evd=$(stat_of $VDP evictions)
	rmc=$(($(rss_kb $MCPID) - r0mc)) rvd=$(($(rss_kb $VDPID) - r0vd))
	stop_pair
	echo "$sz $keys $imc $ivd $emc $evd $rmc $rvd" >>"$W/rows"
	echo "capacity $sz B: written $keys; kept mc=$imc vd=$ivd; evicted mc=$emc vd=$evd; RSS growth kB mc=$rmc vd=$rvd" >&2
done

human() { awk -v n="$1" 'BEGIN {if (n >= 1024) printf "%d KiB", n / 1024; else printf "%d B", n}'; }
{
	echo "### mempool: items kept in the same memory (memcached -m 64 vs mem_limit = 64M)"
	echo
	echo "Fresh servers per value size; twice as many keys written (pipelined noreply sets, keys k:N) as"
	echo "fit, so both evict; then curr_items and the growth of each process's resident"
	echo "memory.  memcached rounds items up to its slab classes and counts slab pages against"
	echo "-m; virgod counts each item's exact bytes (header, key, value) against mem_limit,"
	echo "and malloc adds its own overhead on top."
	echo
	echo "| value | keys written | items kept mc / vd | **items ratio** | RSS growth MiB mc / vd | **RSS per item ratio** |"
	echo "|---|---|---|---|---|---|"
	while read -r sz keys imc ivd emc evd rmc rvd; do
		awk -v sz="$(human $sz)" -v k=$keys -v imc=$imc -v ivd=$ivd -v rmc=$rmc -v rvd=$rvd 'BEGIN {
			ir = imc > 0 ? ivd / imc : 0
			pr = (imc > 0 && ivd > 0 && rmc > 0) ? (rvd / ivd) / (rmc / imc) : 0
			printf "| %s | %d | %d / %d | **%.2f** | %.1f / %.1f | **%.2f** |\n", sz, k, imc, ivd, ir, rmc / 1024, rvd / 1024, pr
		}'
	done <"$W/rows"
	echo
} >"$R/capacity.md"
