#!/bin/sh
# check-docs.sh <build-dir>: the docs and packaging still match the code.
# Man pages render without warnings; every key of the example configs is
# documented and loads (a node starts on the uncommented example, the
# client reads its example); `make install` into a temporary root works
# and its `virgo --help` runs; the README's plugin and C examples compile
# warning-free with the cc lines they give (pkg-config against that
# install); and the C example, under ASan/LeakSanitizer against a local
# 3-node cluster loading the plugin, runs and frees what it allocates.
# Prints one line per check; exits 1 if any failed.
set -u
B=${1:-build}
top=$(pwd)
tmp=$(mktemp -d)
pids=""
fail=0
ok() { echo "ok   $*"; }
bad() { echo "FAIL $*"; fail=1; }
cleanup() {
	for p in $pids; do kill "$p" 2>/dev/null; done
	for p in $pids; do wait "$p" 2>/dev/null; done
	rm -rf "$tmp"
}
trap cleanup EXIT INT TERM

# 1. man pages
if command -v man >/dev/null 2>&1; then
	for m in docs/man/*.[1-8]; do
		w=$(LC_ALL=C.UTF-8 MANWIDTH=80 man --warnings -l "$m" 2>&1 >/dev/null)
		[ -z "$w" ] && ok "man $m" || bad "man $m: $w"
	done
else
	echo "skip man pages (no man: apt-get install man-db)"
fi

# 2. every key of the example configs is in its man page and the README
for f in virgo_cloud virgo_client; do
	for k in $(sed -n 's/^#\([a-z_]*\) =.*/\1/p' packaging/$f.conf); do
		grep -q "$k" docs/man/$f.conf.5 || bad "$k (packaging/$f.conf) not in docs/man/$f.conf.5"
		case $k in # the README has one <service>_... row for these
		*_port | *_threads | *_max_connections) k="<service>${k#*_}" k="<service>_${k#<service>}" ;;
		esac
		grep -q "$k" README.md || bad "$k (packaging/$f.conf) not in README.md"
	done
done
ok "example config keys documented"

# 3. make install into a temporary root
if make --no-print-directory install BUILD="$B" DESTDIR="$tmp/root" PREFIX=/usr >"$tmp/install.log" 2>&1 &&
	"$tmp/root/usr/bin/virgo" --help >/dev/null; then
	ok "make install DESTDIR=... PREFIX=/usr; installed virgo --help"
else
	bad "make install (see below)"; cat "$tmp/install.log"
fi

# 4. the README's C examples, with the cc lines they give
block() { # the ```c block of README.md that contains $1
	awk -v pat="$1" '/^```c$/ {inb=1; buf=""; next}
		inb && /^```$/ {inb=0; if (index(buf, pat)) {printf "%s", buf; exit} next}
		inb {buf = buf $0 "\n"}' README.md
}
export PKG_CONFIG_SYSROOT_DIR="$tmp/root" PKG_CONFIG_PATH="$tmp/root/usr/lib/pkgconfig"
block "virgo_plugin_functions[]" >"$tmp/wc.c"
block "int main" >"$tmp/ex.c"
san=""
echo 'int main(void){return 0;}' | cc -fsanitize=address -x c -o "$tmp/san" - 2>/dev/null && san="-fsanitize=address -g"
for f in wc ex; do
	line=$(sed -n 's|^/\* '$f'\.c: \(cc .*\)$|\1|p; s|^/\* '$f'\.c: \(cc .*\) \*/$|\1|p' "$tmp/$f.c" | head -1)
	line=${line% \*/}
	if [ -z "$line" ]; then
		bad "README $f.c: no '/* $f.c: cc ...' line"
		continue
	fi
	[ "$f" = ex ] && line="$line $san"
	if (cd "$tmp" && eval "$line -Wall -Wextra -Werror") >"$tmp/cc.log" 2>&1; then
		ok "README $f.c: $line"
	else
		bad "README $f.c: $line"; cat "$tmp/cc.log"
	fi
done

# 5. the C example and the plugin against a local cluster
off=$((1000 + $$ % 400))
tries=0
# cloudsync's and cloudfs's ports (40000 and 50000 + offset) lie in the
# ephemeral range: skip offsets where a client connection (even in
# TIME-WAIT) holds one
while ss -Htan 2>/dev/null | awk -v a=$((40001 + off)) -v b=$((40003 + off)) \
	'{n = split($4, p, ":"); if ((p[n] >= a && p[n] <= b) ||
	  (p[n] >= a + 10000 && p[n] <= b + 10000)) f = 1} END {exit !f}'; do
	off=$((off + 3))
	# virgod's -o takes 0..1500 (three nodes use off..off+2)
	[ $off -le 1497 ] || off=1000
	tries=$((tries + 1))
	[ $tries -lt 200 ] || { echo "check-docs: no free port offset in 1000..1500" >&2; exit 1; }
done
: >"$tmp/client.conf"
sed 's/^#\([a-z_]* =\)/\1/' packaging/virgo_cloud.conf |
	grep -v '^\(pidfile\|log_file\|listen\|insecure_listen\|port_offset\|node_id\|plugins\|eventnet_dir\|[a-z]*_port\|tls_[a-z]*\|memcache_tls\|auth_token\|auth_tokens_file\) =' >"$tmp/cloud.conf"
echo "plugins = $tmp/libwc.so" >>"$tmp/cloud.conf"
for i in 1 2 3; do
	"$B/virgod" -c "$tmp/cloud.conf" -n $i -o $((off + i)) -p "$tmp/n$i.pid" -v warn &
	pids="$pids $!"
	echo "node = $i 127.0.0.1 $((off + i))" >>"$tmp/client.conf"
done
t=0
while [ ! -s "$tmp/n1.pid" ] || [ ! -s "$tmp/n2.pid" ] || [ ! -s "$tmp/n3.pid" ]; do
	t=$((t + 1))
	for p in $pids; do kill -0 "$p" 2>/dev/null || t=999; done
	[ $t -gt 300 ] && break
	sleep 0.1
done
if [ $t -gt 300 ]; then
	bad "3 nodes on the uncommented example virgo_cloud.conf did not start"
else
	ok "3 nodes start on the uncommented example virgo_cloud.conf"
	export VIRGO_CLIENT_CONF="$tmp/client.conf"
	if [ -x "$tmp/ex" ] && LD_LIBRARY_PATH="$tmp/root/usr/lib" "$tmp/ex" >"$tmp/ex.out" 2>&1 &&
		grep -q '^hello$' "$tmp/ex.out"; then
		ok "README C example runs${san:+ leak-free (ASan)}"
	else
		bad "README C example"; cat "$tmp/ex.out" 2>/dev/null
	fi
	r=$(printf 'one two  three' | "$B/virgo" clone wordcount - 2>&1)
	[ "$r" = 3 ] && ok "README plugin: virgo clone wordcount -> 3" || bad "README plugin: got '$r'"
fi
sed 's/^#\([a-z_]* =\)/\1/' packaging/virgo_client.conf | grep -v '^\(node_ip_addrs\|tls_[a-z]*\|memcache_tls\|auth_token\)' >"$tmp/c2.conf"
"$B/virgo" -c "$tmp/c2.conf" owner k >/dev/null 2>&1 && ok "uncommented example virgo_client.conf loads" ||
	bad "uncommented example virgo_client.conf"
exit $fail
