#!/bin/bash
# netns_cluster.sh BUILD - a real three-host VIRGO cluster with TLS, in
# network namespaces (make test-cluster; needs root, ip, nft).
#
# Five namespaces of its own: a switch (a bridge), three hosts with
# non-loopback addresses on it (10.77.0.1-3, veth pairs), each running
# virgod with mutual TLS (certificates from `virgo certs init`), and a
# client (10.77.0.10).  From the client, over TLS across hosts: every
# service end to end (mempool, cpupool run and clone, memcache with
# memcache_tls on host 3 and plain on a host's loopback, the queue with a
# group worker, cloudfs copies between hosts and a virgofs mount in the
# client namespace, cloudsync locks, EventNet events on two hosts merged
# by why, analytics set/get/watch); a
# wrong-CA client and a plain client refused, a link cut with nftables
# (errors within the client's timeout, the balancer avoids the host, then
# uses it again once the link returns), a host's virgod killed and
# restarted.  Everything is created under unique names and removed at
# exit; no address or rule outside these namespaces is touched.
# Prints "N passed, N failed, N skipped"; exit 1 if anything failed.
set -u
BUILD=${1:-build}
BUILD=$(cd "$BUILD" && pwd)
VIRGOD=$BUILD/virgod
VIRGO=$BUILD/virgo
LB=$BUILD/tests/cluster_lb
P=vg$$ # unique prefix of our namespaces
SW=$P-sw
CL=$P-c
HOSTS="1 2 3"
NET=10.77.0
TMP=$(mktemp -d /tmp/virgo-netns.XXXXXX)
passed=0
failed=0
skipped=0

ok() { passed=$((passed + 1)); echo "ok - $*"; }
bad() { failed=$((failed + 1)); echo "FAIL - $*"; }
check() { # check DESC CMD...: passes when CMD succeeds
	local d=$1
	shift
	if "$@"; then ok "$d"; else bad "$d"; fi
}
ms() { date +%s%3N; }
inns() { local ns=$1; shift; ip netns exec "$ns" "$@"; }

cleanup() {
	for h in $HOSTS; do
		if [ -s "$TMP/h$h.pid" ]; then
			kill "$(cat "$TMP/h$h.pid")" 2>/dev/null
		fi
	done
	for h in $HOSTS; do
		# wait (bounded) for our virgods to exit, then force
		for _ in $(seq 50); do
			[ -s "$TMP/h$h.pid" ] && kill -0 "$(cat "$TMP/h$h.pid")" 2>/dev/null || break
			sleep 0.1
		done
		[ -s "$TMP/h$h.pid" ] && kill -9 "$(cat "$TMP/h$h.pid")" 2>/dev/null
	done
	for ns in $CL $P-h1 $P-h2 $P-h3 $SW; do ip netns del "$ns" 2>/dev/null; done
	if [ "$failed" -ne 0 ]; then
		for h in $HOSTS; do echo "---- log of host $h"; tail -n 30 "$TMP/h$h.log" 2>/dev/null; done
	fi
	rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

for t in ip nft; do
	if ! command -v $t >/dev/null; then
		echo "skipped: $t is not installed"
		echo
		echo "0 passed, 0 failed, 1 skipped"
		exit 0
	fi
done
if [ "$(id -u)" != 0 ] || ! ip netns add $SW 2>/dev/null; then
	echo "skipped: creating network namespaces needs root (CAP_NET_ADMIN)"
	echo
	echo "0 passed, 0 failed, 1 skipped"
	exit 0
fi

# ---- the network: a bridge in the switch namespace, a veth to each host
inns $SW ip link add br0 type bridge
inns $SW ip link set br0 up
inns $SW ip link set lo up
attach() { # attach NS ADDR PORTNAME
	ip netns add "$1"
	ip -n "$1" link add eth0 type veth peer name "$3" netns $SW
	ip -n "$1" addr add "$2/24" dev eth0
	ip -n "$1" link set eth0 up
	ip -n "$1" link set lo up
	ip -n $SW link set "$3" master br0
	ip -n $SW link set "$3" up
}
for h in $HOSTS; do attach $P-h$h $NET.$h p$h; done
attach $CL $NET.10 pc

# ---- certificates, configs, daemons
"$VIRGO" certs init "$TMP/certs" --nodes $NET.1,$NET.2,$NET.3 >/dev/null || { bad "virgo certs init"; exit 1; }
"$VIRGO" certs init "$TMP/other" --nodes $NET.1 >/dev/null
for h in $HOSTS; do
	cat >"$TMP/h$h.conf" <<EOF
node_id = $h
listen = $NET.$h
tls_cert = $TMP/certs/node$h.pem
tls_key = $TMP/certs/node$h.key
tls_ca = $TMP/certs/ca.pem
pidfile = $TMP/h$h.pid
threads = 1
mem_limit = 64M
queue_dir = $TMP/h$h/queue
cloudfs_export_root = $TMP/h$h/fs
lock_state_dir = $TMP/h$h/state
eventnet_dir = $TMP/h$h/eventnet
EOF
	mkdir -p "$TMP/h$h/state"
done
# host 3 serves its memcached port on the network, with TLS
echo "memcache_tls = yes" >>"$TMP/h3.conf"
client_conf() { # client_conf FILE CA CERT|-
	{
		for h in $HOSTS; do echo "node = $h $NET.$h"; done
		echo "connect_timeout_ms = 300"
		echo "timeout_ms = 1000"
		echo "backoff_ms = 500"
		echo "backoff_max_ms = 2000"
		[ "$2" = - ] || echo "tls_ca = $2"
		[ "$3" = - ] || printf 'tls_cert = %s.pem\ntls_key = %s.key\n' "$3" "$3"
	} >"$1"
}
client_conf "$TMP/client.conf" "$TMP/certs/ca.pem" "$TMP/certs/client"
client_conf "$TMP/wrongca.conf" "$TMP/other/ca.pem" "$TMP/other/client"
client_conf "$TMP/plain.conf" - -
export VIRGO_CLIENT_CONF=$TMP/client.conf

start_host() { # start_host H: starts virgod in host H's namespace, waits until ready
	rm -f "$TMP/h$1.pid"
	inns $P-h$1 "$VIRGOD" -c "$TMP/h$1.conf" >>"$TMP/h$1.log" 2>&1 &
	local deadline=$(($(ms) + 10000))
	until [ -s "$TMP/h$1.pid" ]; do
		[ "$(ms)" -lt $deadline ] || return 1
		sleep 0.05
	done
}
for h in $HOSTS; do check "host $h: virgod starts with TLS on $NET.$h" start_host $h; done

c() { inns $CL "$@"; }

# ---- every service, end to end, from the client namespace
out=$(c "$VIRGO" ping 2>&1)
check "ping: three nodes up over TLS" test "$(echo "$out" | grep -c ': up')" = 3
v=$(c "$VIRGO" malloc 100 2>&1) && c "$VIRGO" set "$v" tls-cluster >/dev/null 2>&1 &&
	got=$(c "$VIRGO" get "$v" 2>&1) && c "$VIRGO" free "$v" >/dev/null 2>&1
check "mempool: malloc, set, get, free ($v)" test "${got:-}" = tls-cluster
out=$(c "$LB" malloc 30 2>&1)
check "mempool: 30 allocations spread over the nodes: $out" \
	sh -c "echo '$out' | grep -q 'failed=0' && ! echo '$out' | grep -q 'node[123]=0 '"
out=$(c "$LB" run 6 2>&1)
check "cpupool: virgo_run on the nodes: $out" sh -c "echo '$out' | grep -q 'failed=0'"
out=$(c "$VIRGO" stats 1 2>&1)
check "stats: TLS on, client certificates required, kTLS reported" \
	sh -c "echo '$out' | grep -q '^tls on' && echo '$out' | grep -q '^tls_client_certs required' && echo '$out' | grep -q '^ktls '"
echo "   (node 1 says: $(echo "$out" | grep '^ktls' | tr '\n' ' '))"
out=$(c "$VIRGO" status 2>&1)
check "status: three nodes up" test "$(echo "$out" | grep -c ' up ')" = 3
# memcached port: plain, on the host's loopback only
mc=$(inns $P-h1 sh -c "printf 'set k 0 0 2\r\nhi\r\nget k\r\n' | nc -q1 -w2 127.0.0.1 11211" 2>&1)
check "memcache: plain on the host's loopback" sh -c "echo '$mc' | grep -q '^hi'"
check "memcache: not reachable from the client over the network" \
	sh -c "! ip netns exec $CL nc -z -w1 $NET.1 11211 2>/dev/null"

# cpupool: functions too
out=$(c "$LB" clone 6 2>&1)
check "cpupool: virgo_clone on the nodes: $out" sh -c "echo '$out' | grep -q 'failed=0'"
# memcache with TLS across hosts (memcache_tls on host 3), memcached's protocol
mc=$(printf 'set tk 0 0 3\r\ntls\r\nget tk\r\nquit\r\n' |
	c timeout 5 openssl s_client -quiet -ign_eof -connect $NET.3:11211 \
		-CAfile "$TMP/certs/ca.pem" -cert "$TMP/certs/client.pem" -key "$TMP/certs/client.key" 2>/dev/null)
check "memcache: set/get over TLS from the client to host 3" \
	sh -c "echo '$mc' | grep -q '^STORED' && echo '$mc' | grep -q '^tls'"

# queue: push to a topic's node, follow it, a consumer-group worker
for i in 1 2 3; do c "$VIRGO" queue push tls-orders "order-$i" >/dev/null 2>&1; done
out=$(c timeout 10 "$VIRGO" queue sub --from 0 --count 3 tls-orders 2>&1)
check "queue: push, then sub from offset 0 sees the three records" \
	sh -c "[ \$(echo '$out' | grep -c 'order-[123]') = 3 ]"
out=$(c timeout 10 "$VIRGO" queue work --group billing --count 3 tls-orders -- cat 2>&1)
rc=$?
check "queue: a group worker runs and acknowledges the three (exit $rc)" test $rc = 0
out=$(c "$VIRGO" queue stat tls-orders 2>&1)
check "queue: the group's committed offset is 3" sh -c "echo '$out' | grep 'billing' | grep -q '3'"

# cloudfs: a file to host 1, host 1 to host 3, read back and listed
echo "cloudfs over tls $$" >"$TMP/f.txt"
c "$VIRGO" cp "$TMP/f.txt" node1:/f.txt >/dev/null 2>&1 &&
	c "$VIRGO" cp node1:/f.txt node3:/copy.txt >/dev/null 2>&1
got=$(c "$VIRGO" cat node3:/copy.txt 2>&1)
check "cloudfs: cp to host 1, host 1 to host 3, cat" test "$got" = "cloudfs over tls $$"
out=$(c "$VIRGO" ls -l node3:/ 2>&1)
check "cloudfs: ls -l on host 3 lists the copy" sh -c "echo '$out' | grep -q copy.txt"

# virgofs in the client namespace: one shell holds the mount (each
# `ip netns exec` has its own mount namespace), writes through node 2's
# directory and reads host 3's copy
if [ -c /dev/fuse ] && command -v fusermount3 >/dev/null && [ -x "$BUILD/virgofs" ]; then
	fsout=$(c sh -c '
		mkdir -p "$1/mnt"
		"$2" -c "$3" -f "$1/mnt" >"$1/virgofs.log" 2>&1 &
		pid=$!
		i=0
		while [ ! -d "$1/mnt/node3" ] && [ $i -lt 200 ]; do sleep 0.05; i=$((i + 1)); done
		cp "$1/f.txt" "$1/mnt/node2/viafuse.txt" && cat "$1/mnt/node3/copy.txt"
		ls "$1/mnt/node2"
		fusermount3 -u "$1/mnt"
		wait $pid' - "$TMP" "$BUILD/virgofs" "$TMP/client.conf" 2>&1)
	got=$(c "$VIRGO" cat node2:/viafuse.txt 2>&1)
	check "virgofs: mounted in the client namespace, a copy in through node2/, host 3's file read" \
		sh -c "echo '$fsout' | grep -q 'cloudfs over tls $$' && echo '$fsout' | grep -q viafuse.txt && [ '$got' = 'cloudfs over tls $$' ]"
else
	skipped=$((skipped + 1))
	echo "skip - virgofs: no /dev/fuse, fusermount3 or virgofs binary"
fi

# cloudsync: a lock held while a command runs, its fencing token exported
out=$(c "$VIRGO" lock --wait 5s tls-lock -- sh -c 'echo "token=$VIRGO_LOCK_TOKEN"' 2>&1)
check "cloudsync: lock, run, unlock ($out)" sh -c "echo '$out' | grep -q '^token=[1-9]'"
c "$VIRGO" lock --wait 0 tls-lock -- true >/dev/null 2>&1
check "cloudsync: the lock is free again after the command" test $? = 0

# EventNet: an event on host 1, its effect on host 2, why merges both.  The
# logger's home node is the pid modulo the node count; evlog.sh lists the
# wanted host at that place and execs virgo (keeping the shell's pid).
cat >"$TMP/evlog.sh" <<'EOS'
#!/bin/sh
h=$1
shift
pos=$(($$ % 3))
order=""
i=0
for x in 1 2 3; do
	[ "$x" = "$h" ] && continue
	[ $i = $pos ] && order="$order $h"
	order="$order $x"
	i=$((i + 1))
done
[ $pos = 2 ] && order="$order $h"
conf=$VG_TMP/ev$$.conf
{
	for x in $order; do echo "node = $x $VG_NET.$x"; done
	grep -v '^node = ' "$VG_TMP/client.conf"
} >"$conf"
exec "$VG_VIRGO" -c "$conf" eventnet log "$@"
EOS
ev() { c env VG_TMP="$TMP" VG_NET=$NET VG_VIRGO="$VIRGO" sh "$TMP/evlog.sh" "$@"; }
o1=$(ev 1 --id tls-order --conv ordered 2>&1)
o2=$(ev 2 --id tls-paid --after tls-order --conv paid 2>&1)
check "eventnet: logged on host 1 ($o1)" sh -c "echo '$o1' | grep -q 'node 1,'"
check "eventnet: logged on host 2 after it ($o2)" sh -c "echo '$o2' | grep -q 'node 2,'"
out=$(c "$VIRGO" eventnet why tls-paid 2>&1)
echo "$out" | sed 's/^/   /'
a=$(echo "$out" | grep -n 'node1 .*tls-order' | cut -d: -f1)
b=$(echo "$out" | grep -n 'node2 .*tls-paid' | cut -d: -f1)
check "eventnet: why merges both hosts' histories in causal order" \
	test "${a:-9}" -lt "${b:-0}"

# analytics: set everywhere, read from another host, watch a change
c "$VIRGO" analytics set --all tls.check=yes >/dev/null 2>&1
got=$(c "$VIRGO" analytics get 3 tls.check 2>&1)
check "analytics: set on every node, get from host 3" test "$got" = yes
r=$(c "$VIRGO" analytics set 2 tls.watch=a 2>&1 | sed -n 's/.*(revision \([0-9]*\)).*/\1/p')
c "$VIRGO" analytics set 2 tls.watch=b >/dev/null 2>&1
# the watch follows for ever: bounded to 2 s, it has the change at once
out=$(c timeout 2 "$VIRGO" analytics watch 2 --from "${r:-0}" 2>&1)
check "analytics: watch from revision ${r:-?} sees the change on host 2" \
	sh -c "echo '$out' | grep -q 'tls.watch=b'"

# ---- refusals
out=$(VIRGO_CLIENT_CONF=$TMP/wrongca.conf c "$VIRGO" ping 2>&1)
check "a client of another CA is refused" sh -c "[ \$(echo '$out' | grep -c DOWN) = 3 ]"
out=$(VIRGO_CLIENT_CONF=$TMP/plain.conf c "$VIRGO" ping 2>&1)
check "a plain-TCP client is refused" sh -c "echo '$out' | grep -q 'requires TLS'"
resp=$(c sh -c "printf 'ping\r\n' | nc -q1 -w2 $NET.2 30000" 2>&1)
check "raw plain text to a TLS port gets no PONG" sh -c "echo '$resp' | grep -q 'ERR EACCES' && ! echo '$resp' | grep -q PONG"

# ---- a link cut with nftables between the client and host 2
CUT="nft add table inet vgcut; nft add chain inet vgcut out '{ type filter hook output priority 0; }'; nft add rule inet vgcut out ip daddr $NET.2 drop"
c sh -c "$CUT"
t0=$(ms)
out=$(c "$VIRGO" ping 2>&1)
dt=$(($(ms) - t0))
check "link cut: node 2 DOWN, the others up" \
	sh -c "echo '$out' | grep -q 'node 2 .*DOWN' && [ \$(echo '$out' | grep -c ': up') = 2 ]"
check "link cut: ping returned within the client's timeouts (${dt} ms)" test $dt -lt 3000
out=$(c "$LB" malloc 80 100 20 "nft delete table inet vgcut" 2>&1)
echo "   $(echo "$out" | tr '\n' ' ')"
before=$(echo "$out" | grep '^before')
last=$(echo "$out" | grep '^last')
check "link cut: the balancer avoids host 2, no call fails" \
	sh -c "echo '$before' | grep -q 'node2=0 ' && echo '$before' | grep -q 'failed=0'"
mx=$(echo "$before" | sed -n 's/.*max_ms=\([0-9]*\).*/\1/p')
check "link cut: slowest malloc ${mx:-?} ms (< 1500: one connect timeout, then another node)" \
	test "${mx:-99999}" -lt 1500
check "link restored: host 2 is used again by the same client" \
	sh -c "! echo '$last' | grep -q 'node2=0 ' && echo '$last' | grep -q 'failed=0'"

# ---- host 3's virgod killed, then restarted
kill -9 "$(cat "$TMP/h3.pid")"
deadline=$(($(ms) + 5000))
while kill -0 "$(cat "$TMP/h3.pid")" 2>/dev/null && [ "$(ms)" -lt $deadline ]; do sleep 0.05; done
out=$(c "$VIRGO" ping 2>&1)
check "host 3 killed: node 3 DOWN" sh -c "echo '$out' | grep -q 'node 3 .*DOWN'"
out=$(c "$LB" malloc 20 2>&1)
check "host 3 killed: allocations go to 1 and 2: $out" \
	sh -c "echo '$out' | grep -q 'node3=0 ' && echo '$out' | grep -q 'failed=0'"
check "host 3: virgod restarts" start_host 3
out=$(c "$VIRGO" ping 2>&1)
check "host 3 back: three nodes up" test "$(echo "$out" | grep -c ': up')" = 3
out=$(c "$LB" malloc 30 2>&1)
check "host 3 back: it takes allocations again: $out" \
	sh -c "! echo '$out' | grep -q 'node3=0 ' && echo '$out' | grep -q 'failed=0'"

echo
echo "$passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ]
