#!/bin/bash
# netns_cluster.sh BUILD - a real three-host VIRGO cluster with TLS, in
# network namespaces (make test-cluster; needs root, ip, nft).
#
# Five namespaces of its own: a switch (a bridge), three hosts with
# non-loopback addresses on it (10.77.0.1-3, veth pairs), each running
# virgod with mutual TLS (certificates from `virgo certs init`), and a
# client (10.77.0.10).  From the client: every service end to end, a
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
EOF
done
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
