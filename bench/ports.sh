# bench/ports.sh - sourced by bench/run.sh and the suites that start
# their own servers: free-port search and readiness with a deadline.

# port_free <port>: nothing listens on it
port_free() { ! ss -Htln "sport = :$1" 2>/dev/null | grep -q .; }

# wait_port <port> <seconds>: until something accepts on 127.0.0.1:port
wait_port() {
	n=0
	while ! nc -z 127.0.0.1 "$1" 2>/dev/null; do
		n=$((n + 1))
		[ $n -gt $(($2 * 50)) ] && return 1
		sleep 0.02
	done
}
