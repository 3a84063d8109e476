# bench/ports.sh - sourced by bench/run.sh and the suites that start
# their own servers: free-port search and readiness with a deadline.

# port_free <port>: nothing listens on it
port_free() { ! ss -Htln "sport = :$1" 2>/dev/null | grep -q .; }
# port_unused <port>: no socket at all uses it as its local port (ports in
# the ephemeral range, such as cloudsync's 40000+, are also taken by
# client connections, whose TIME-WAIT blocks a listener's bind for 60 s)
port_unused() { ! ss -Htan "sport = :$1" 2>/dev/null | grep -q .; }

# offset_free <offset>: no socket uses any port of a virgod node at that
# port offset (other suites, or other checkouts' benches, may be running;
# a port taken by a client connection blocks a listener as much)
offset_free() {
	for base in 10000 11211 20000 30000 40000 50000 60000 64000; do
		port_unused $((base + $1)) || return 1
	done
}

# wait_port <port> <seconds>: until something accepts on 127.0.0.1:port
wait_port() {
	n=0
	while ! nc -z 127.0.0.1 "$1" 2>/dev/null; do
		n=$((n + 1))
		[ $n -gt $(($2 * 50)) ] && return 1
		sleep 0.02
	done
}

# pick_ports <memcached base> <virgod offset base>: sets MCP (a free port
# for a memcached), OFF (a port offset where virgod's memcache, mempool and
# cpupool ports are free), VDP (virgod's memcached port) and MC_USER (-u
# nobody when root, as memcached requires)
pick_ports() {
	MCP=$1
	while ! port_free $MCP; do MCP=$((MCP + 1)); done
	OFF=$2
	while ! port_free $((11211 + OFF)) || ! port_free $((30000 + OFF)) || ! port_free $((10000 + OFF)); do
		OFF=$((OFF + 1))
	done
	VDP=$((11211 + OFF))
	MC_USER=""
	[ "$(id -u)" -eq 0 ] && MC_USER="-u nobody"
}
