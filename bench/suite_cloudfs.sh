#!/bin/sh
# bench/suite_cloudfs.sh <build-dir> <results-dir> - the cloud file system
# against its peers, measured in the same run on this machine: the local
# disk itself and sshfs over loopback (Debian's sshfs + an sshd of
# openssh-server bound to 127.0.0.1 on a free port, started here, default
# options: the usual sshfs set-up).
#
# Starts its own virgod (cloudfs only, export root on the local disk under
# $BENCH_CFS_DIR, default /var/tmp) and a virgofs mount of it.
#   - sequential write of BENCH_CFS_MB MiB (default 1024) from a file in
#     the page cache, made durable (dd conv=fsync, virgo cp --fsync);
#     BENCH_CFS_MB=0 skips the sequential part (quicker while iterating
#     on the small-file figures);
#   - sequential read of it from a cold page cache: the file's pages are
#     dropped before each read with posix_fadvise(DONTNEED) (dd
#     iflag=nocache count=0) on the node's file and on the client's view
#     of it, so the whole machine's cache is left alone;
#   - small files through the mounts: BENCH_CFS_FILES (default 10000)
#     creates (open+write 4 KiB+close), stats, and a readdir of them.  The
#     mounts take turns, in BENCH_CFS_CHUNKS (default 5) chunks of creates
#     and of stats each, so a change in the machine's load falls on both
#     (rates: files / the sum of a mount's chunk times).  The listing is
#     timed BENCH_CFS_READDIR_PASSES times (default 5) per mount, in turns,
#     each of a directory just renamed (sshfs keeps a listing for 20 s by
#     path, so every pass is a fresh listing on both), and the median
#     pass counts;
#   - virgod's resident memory before and its peak (VmHWM) after the
#     copies.
# BENCH_CFS_OFFSET (default 1100): the first port offset tried for the
# node (the next free one is taken), for manual runs in a given block.
# Writes cloudfs.md.
set -u
B=$1
R=$2
MB=${BENCH_CFS_MB:-1024}
NFILES=${BENCH_CFS_FILES:-10000}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
. "$ROOT/bench/ports.sh"
W=$(mktemp -d "${BENCH_CFS_DIR:-/var/tmp}/virgo-bench-cfs-XXXXXX")
PIDS=""
MNTS=""
cleanup() {
	for m in $MNTS; do fusermount3 -u -z "$m" 2>/dev/null; done
	for p in $PIDS; do kill -TERM "$p" 2>/dev/null; done
	for p in $PIDS; do wait "$p" 2>/dev/null; done
	rm -rf "$W"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

FSOPS=$BENCH_TOOLS/fsops
[ -x "$FSOPS" ] || cc -O2 -Wall -Wextra -Werror -D_GNU_SOURCE -o "$W/fsops" "$ROOT/bench/fsops.c" && FSOPS=${FSOPS%/*}/fsops
[ -x "$FSOPS" ] || FSOPS=$W/fsops

now() { date +%s.%N; }
rate() { awk -v mb="$MB" -v a="$1" -v b="$2" 'BEGIN {printf "%.0f", mb / (b - a)}'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {if (b > 0 && a > 0) printf "%.2f", a / b; else print "-"}'; }
cold() { for f in "$@"; do dd if="$f" iflag=nocache count=0 status=none 2>/dev/null; done; }

# --- virgod (cloudfs only) and virgofs ------------------------------------------
OFF=${BENCH_CFS_OFFSET:-1100}
ports_free() { # every port this node listens on (other helpers' nodes may sit near)
	for b in 20000 50000 60000 64000; do port_unused $((b + $1)) || return 1; done
}
while ! ports_free $OFF; do OFF=$((OFF + 1)); done
mkdir -p "$W/export" "$W/mnt" "$W/local" "$W/sshexport" "$W/sshmnt"
# Each run's small files in block groups of their own: ext4 without a
# journal (as on these VMs) passes over every inode freed in the last
# 60 s (360 s while its table block is dirty) when it allocates one in a
# group (recently_deleted()), so creates in the groups a run just emptied
# of its tens of thousands of files ran 7-25x slower on every mount and
# on the local disk alike (27,600/s -> 1,000/s locally): the next run
# measured the disk, not the mounts.  The three directories the files go
# in are "top" directories for the Orlov allocator (chattr +T), so a
# subdirectory of a name no run had before is placed in a group of its
# own choosing (best effort: other file systems ignore it).
chattr +T "$W/local" "$W/export" "$W/sshexport" 2>/dev/null
SMALL=small-${W##*-}
cat >"$W/node.conf" <<CONF
node_id = 1
port_offset = $OFF
mempool_port = 0
cpupool_port = 0
memcache_port = 0
cloudsync_port = 0
threads = 2
pidfile = $W/virgod.pid
log_level = warn
cloudfs_export_root = $W/export
CONF
printf 'node = 1 127.0.0.1 %d\ntimeout_ms = 120000\n' $OFF >"$W/client.conf"
"$B/virgod" --config "$W/node.conf" >"$W/virgod.log" 2>&1 &
VPID=$!
PIDS="$PIDS $VPID"
wait_port $((50000 + OFF)) 5 || { echo "virgod did not start"; cat "$W/virgod.log"; exit 1; }
export VIRGO_CLIENT_CONF="$W/client.conf"
V="$B/virgo -c $W/client.conf"
HAVE_FUSE=""
if [ -x "$B/virgofs" ] && [ -e /dev/fuse ]; then
	"$B/virgofs" -c "$W/client.conf" -f "$W/mnt" >"$W/virgofs.log" 2>&1 &
	PIDS="$PIDS $!"
	n=0
	while [ ! -d "$W/mnt/node1" ] && [ $n -lt 250 ]; do sleep 0.02; n=$((n + 1)); done
	[ -d "$W/mnt/node1" ] && HAVE_FUSE=1 && MNTS="$MNTS $W/mnt"
fi
[ -n "$HAVE_FUSE" ] || echo "virgofs not mounted (no /dev/fuse or no build/virgofs): no mount figures"

# --- sshd on 127.0.0.1 and sshfs ------------------------------------------------
HAVE_SSHFS=""
if command -v sshfs >/dev/null && [ -x /usr/sbin/sshd ]; then
	SP=22220
	while ! port_free $SP; do SP=$((SP + 1)); done
	mkdir -p "$W/ssh" /run/sshd 2>/dev/null
	ssh-keygen -q -t ed25519 -N '' -f "$W/ssh/host" && ssh-keygen -q -t ed25519 -N '' -f "$W/ssh/id"
	cp "$W/ssh/id.pub" "$W/ssh/authorized_keys"
	cat >"$W/ssh/sshd_config" <<CONF
ListenAddress 127.0.0.1
Port $SP
HostKey $W/ssh/host
AuthorizedKeysFile $W/ssh/authorized_keys
PermitRootLogin prohibit-password
PasswordAuthentication no
StrictModes no
UsePAM no
PidFile $W/ssh/sshd.pid
Subsystem sftp internal-sftp
CONF
	/usr/sbin/sshd -D -e -f "$W/ssh/sshd_config" >"$W/sshd.log" 2>&1 &
	PIDS="$PIDS $!"
	if wait_port $SP 5 && sshfs -p $SP -o IdentityFile="$W/ssh/id",StrictHostKeyChecking=no \
		-o UserKnownHostsFile=/dev/null,BatchMode=yes \
		"$(id -un)@127.0.0.1:$W/sshexport" "$W/sshmnt" >"$W/sshfs.log" 2>&1; then
		HAVE_SSHFS=1
		MNTS="$MNTS $W/sshmnt"
	else
		echo "sshfs did not mount:"; cat "$W/sshd.log" "$W/sshfs.log"
	fi
else
	echo "sshfs or openssh-server not installed (scripts/deps.sh --bench): no sshfs figures"
fi

# --- sequential write and cold read ----------------------------------------------
w_local=- w_cp=- w_mnt=- w_ssh=- r_local=- r_cp=- r_mnt=- r_ssh=-
rss0=$(awk '/VmRSS/ {print $2}' /proc/$VPID/status); rss1=-; rss2=-
if [ "$MB" -gt 0 ]; then
	head -c $((MB * 1048576)) /dev/urandom >"$W/src.bin"
	cat "$W/src.bin" >/dev/null # the source stays in the page cache
	rss0=$(awk '/VmRSS/ {print $2}' /proc/$VPID/status)
	sync

	t0=$(now); dd if="$W/src.bin" of="$W/local/f" bs=1M conv=fsync status=none; t1=$(now)
	w_local=$(rate $t0 $t1)
	t0=$(now); $V cp --fsync "$W/src.bin" node1:/cp.bin; t1=$(now)
	w_cp=$(rate $t0 $t1)
	cmp -s "$W/src.bin" "$W/export/cp.bin" || echo "virgo cp: copy differs!"
	w_mnt=-; w_ssh=-
	if [ -n "$HAVE_FUSE" ]; then
		t0=$(now); dd if="$W/src.bin" of="$W/mnt/node1/mnt.bin" bs=1M conv=fsync status=none; t1=$(now)
		w_mnt=$(rate $t0 $t1)
	fi
	if [ -n "$HAVE_SSHFS" ]; then
		t0=$(now); dd if="$W/src.bin" of="$W/sshmnt/ssh.bin" bs=1M conv=fsync status=none; t1=$(now)
		w_ssh=$(rate $t0 $t1)
	fi
	rss1=$(awk '/VmHWM/ {print $2}' /proc/$VPID/status)
	sync

	cold "$W/local/f"
	t0=$(now); dd if="$W/local/f" of=/dev/null bs=1M status=none; t1=$(now)
	r_local=$(rate $t0 $t1)
	cold "$W/export/cp.bin"
	t0=$(now); $V cp node1:/cp.bin - >/dev/null; t1=$(now)
	r_cp=$(rate $t0 $t1)
	r_mnt=-; r_ssh=-
	if [ -n "$HAVE_FUSE" ]; then
		cold "$W/export/mnt.bin" "$W/mnt/node1/mnt.bin"
		t0=$(now); dd if="$W/mnt/node1/mnt.bin" of=/dev/null bs=1M status=none; t1=$(now)
		r_mnt=$(rate $t0 $t1)
	fi
	if [ -n "$HAVE_SSHFS" ]; then
		cold "$W/sshexport/ssh.bin" "$W/sshmnt/ssh.bin"
		t0=$(now); dd if="$W/sshmnt/ssh.bin" of=/dev/null bs=1M status=none; t1=$(now)
		r_ssh=$(rate $t0 $t1)
	fi
	rss2=$(awk '/VmHWM/ {print $2}' /proc/$VPID/status)
	rm -f "$W/src.bin" "$W/local/f" "$W/export/cp.bin" "$W/export/mnt.bin" "$W/sshexport/ssh.bin"
fi

# --- small files -----------------------------------------------------------------
CHUNKS=${BENCH_CFS_CHUNKS:-5}
PASSES=${BENCH_CFS_READDIR_PASSES:-5}
DIRS="$W/local"
[ -n "$HAVE_FUSE" ] && DIRS="$DIRS $W/mnt/node1"
[ -n "$HAVE_SSHFS" ] && DIRS="$DIRS $W/sshmnt"
key() { case $1 in "$W/local") echo l ;; "$W/mnt/node1") echo m ;; *) echo s ;; esac; }
for d in $DIRS; do mkdir -p "$d/$SMALL" && : >"$W/t_$(key "$d")_create" && : >"$W/t_$(key "$d")_stat"; done
per=$(((NFILES + CHUNKS - 1) / CHUNKS))
for op in create stat; do
	first=0
	while [ $first -lt $NFILES ]; do
		n=$((NFILES - first < per ? NFILES - first : per))
		for d in $DIRS; do
			"$FSOPS" $op "$d/$SMALL" $n $first | awk '{print $1, $2}' >>"$W/t_$(key "$d")_$op"
		done
		first=$((first + n))
	done
done
i=0
while [ $i -lt "$PASSES" ]; do
	for d in $DIRS; do
		mv "$d/$SMALL" "$d/$SMALL.$i" 2>/dev/null || mv "$d/$SMALL.$((i - 1))" "$d/$SMALL.$i"
		"$FSOPS" readdir "$d/$SMALL.$i" | awk '{print $1, $2}' >>"$W/t_$(key "$d")_readdir"
	done
	i=$((i + 1))
done
# files / summed seconds (every file done, else 0); the median listing rate
total() { awk -v n=$NFILES '{f += $1; s += $2} END {printf "%.0f", (f == n && s > 0) ? f / s : 0}' "$1"; }
median() {
	awk -v n=$NFILES '$1 == n && $2 > 0 {print $1 / $2} $1 != n {print 0}' "$1" | sort -n |
		awk '{v[NR] = $1} END {printf "%.0f", NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2}'
}
small() { echo "$(total "$W/t_$1_create") $(total "$W/t_$1_stat") $(median "$W/t_$1_readdir")"; }
set -- $(small l); sl_c=$1 sl_s=$2 sl_d=$3
sm_c=- sm_s=- sm_d=- ss_c=- ss_s=- ss_d=-
[ -n "$HAVE_FUSE" ] && { set -- $(small m); sm_c=$1 sm_s=$2 sm_d=$3; }
[ -n "$HAVE_SSHFS" ] && { set -- $(small s); ss_c=$1 ss_s=$2 ss_d=$3; }

# --- report -------------------------------------------------------------------
{
	echo "## cloudfs: virgo cp and the virgofs mount vs the local disk and sshfs"
	echo
	echo "One virgod (cloudfs, 2 threads) exporting a directory on the local disk;"
	echo "sshfs mounts the same disk through an sshd on 127.0.0.1 (default options)."
	echo "Sequential: $MB MiB, writes made durable (fsync), reads from a cold page"
	echo "cache (the file's pages dropped with fadvise DONTNEED before each read)."
	echo "Small files: $NFILES files of 4 KiB through each mount (create = open+write+close),"
	echo "the mounts taking turns in $CHUNKS chunks; readdir: the median of $PASSES listings each"
	echo "(in turns, each of the directory just renamed, so sshfs lists it afresh too)."
	echo
	echo "| operation | local disk | virgo cp | virgofs mount | sshfs | cp / local | mount / local | cp / sshfs | mount / sshfs |"
	echo "|---|---|---|---|---|---|---|---|---|"
	echo "| seq write MiB/s | $w_local | $w_cp | $w_mnt | $w_ssh | $(ratio $w_cp $w_local) | $(ratio $w_mnt $w_local) | $(ratio $w_cp $w_ssh) | $(ratio $w_mnt $w_ssh) |"
	echo "| seq read MiB/s (cold) | $r_local | $r_cp | $r_mnt | $r_ssh | $(ratio $r_cp $r_local) | $(ratio $r_mnt $r_local) | $(ratio $r_cp $r_ssh) | $(ratio $r_mnt $r_ssh) |"
	echo "| create 4 KiB files/s | $sl_c | | $sm_c | $ss_c | | $(ratio $sm_c $sl_c) | | $(ratio $sm_c $ss_c) |"
	echo "| stat/s | $sl_s | | $sm_s | $ss_s | | $(ratio $sm_s $sl_s) | | $(ratio $sm_s $ss_s) |"
	echo "| readdir entries/s ($NFILES) | $sl_d | | $sm_d | $ss_d | | $(ratio $sm_d $sl_d) | | $(ratio $sm_d $ss_d) |"
	echo
	echo "virgod resident memory: $rss0 kB before the copies, peak (VmHWM) $rss1 kB after the"
	echo "writes and $rss2 kB after the reads of $MB MiB each (the node streams in 1 MiB pieces)."
} >"$R/cloudfs.md"
cat "$R/cloudfs.md"
