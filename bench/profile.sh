#!/usr/bin/env bash
# End-to-end CPU and allocation profiles of the pineconed data path (issue
# 14): one iperf3 TCP stream over the overlay, 1 hop (a->b) and then 2 hops
# (a->b->c), with CPU profiles of every daemon that carries the stream
# taken over the same window, and allocation and packet counts around it.
#
# Run as root from anywhere in the repository:
#   bench/profile.sh                       # profiles land in /tmp/pcd-profile-DATE
#   PROFDIR=/tmp/p SECONDS_CPU=10 bench/profile.sh
#
# It reuses throughput.sh's namespaces and daemons (throughput.sh runs this
# script as its HOOK with -debug-pprof on every daemon; each namespace has
# its own loopback, so 127.0.0.1:6060 is a different daemon in each).
# Output per path (pcd1, pcd2) and daemon (a sender, b receiver or middle,
# c receiver of the 2-hop run):
#   PATH-D.cpu.pb.gz      CPU profile over SECONDS_CPU s of the stream
#   PATH-D.allocs0/1.pb.gz allocation profiles before and after that window
#                         (go tool pprof -sample_index=alloc_objects
#                         -diff_base PATH-D.allocs0.pb.gz PATH-D.allocs1.pb.gz)
#   PATH-D.packets        TUN rx/tx packets, the runtime's Mallocs (all
#                         allocations, not sampled) and the read/write system
#                         calls (/proc/PID/io) before and after the window
#   PATH.iperf3           the iperf3 client's output
#   idle-a.*              the same for daemon a with no traffic: the control
#                         for the profiler's own allocations
#   loadavg               /proc/loadavg at the start and end of each window
# Summaries: `go tool pprof -top PATH-D.cpu.pb.gz` (bench/PROFILE.md says
# how the stages are grouped).
set -euo pipefail

SECONDS_CPU=${SECONDS_CPU:-10}
if ! [[ $SECONDS_CPU =~ ^[0-9]+$ ]] || ((SECONDS_CPU < 1 || SECONDS_CPU > 60)); then
	echo "SECONDS_CPU must be 1..60" >&2
	exit 2
fi

if [[ -z ${NS_A:-} ]]; then
	# Not yet inside throughput.sh: let it set up, and come back as HOOK.
	here=$(cd "$(dirname "$0")" && pwd)
	PROFDIR=${PROFDIR:-/tmp/pcd-profile-$(date -u +%Y%m%d-%H%M%S)}
	mkdir -p "$PROFDIR"
	export PROFDIR SECONDS_CPU
	echo "profiles go to $PROFDIR" >&2
	WIREGUARD_GO=none PINECONED_ARGS="-debug-pprof 127.0.0.1:6060" HOOK="$here/profile.sh" \
		exec "$here/throughput.sh"
fi

command -v curl >/dev/null || {
	echo "profile.sh: curl not found" >&2
	exit 2
}
out=$PROFDIR
pprof_url=http://127.0.0.1:6060/debug/pprof
declare -A ns=([a]=$NS_A [b]=$NS_B [c]=$NS_C) pid=([a]=$PID_A [b]=$PID_B [c]=$PID_C)

# fetch D WHAT FILE: one pprof endpoint of daemon D into FILE, bounded.
fetch() {
	ip netns exec "${ns[$1]}" curl -sf --max-time $((SECONDS_CPU + 20)) -o "$3" "$pprof_url/$2"
}
# packets D: "rx tx mallocs syscr syscw": packets of D's TUN, the
# allocations the daemon made since it started (runtime.MemStats.Mallocs,
# exact where the heap profile only samples), and its read and write
# system calls (/proc/PID/io: TUN, sockets and all).
packets() {
	local m
	m=$(ip netns exec "${ns[$1]}" curl -sf --max-time 10 "$pprof_url/allocs?debug=1" | awk '/^# Mallocs = / { print $4 }')
	# shellcheck disable=SC2016 # awk's own fields, read inside the namespace
	echo "$(ip netns exec "${ns[$1]}" awk '/pcd0:/ { sub(/.*pcd0:/, ""); print $2, $10 }' /proc/net/dev) $m" \
		"$(awk '/^syscr:/ { r = $2 } /^syscw:/ { w = $2 } END { print r, w }' "/proc/${pid[$1]}/io")"
}

# profile PATH TARGET_NS ADDRESS DAEMONS…
profile() {
	local path=$1 srv=$2 addr=$3 d client
	shift 3
	ip netns exec "$srv" iperf3 -s -1 -B "$addr" >"$out/$path.iperf3-server" 2>&1 &
	for _ in $(seq 100); do
		ip netns exec "$srv" ss -Hltn 'sport = :5201' | grep -q . && break
		sleep 0.1
	done
	ip netns exec "$NS_A" iperf3 -c "$addr" -t $((SECONDS_CPU + 4)) -f m >"$out/$path.iperf3" 2>&1 &
	client=$!
	sleep 2 # past slow start
	echo "$path start $(cat /proc/loadavg)" >>"$out/loadavg"
	for d in "$@"; do
		fetch "$d" allocs "$out/$path-$d.allocs0.pb.gz"
		echo "before $(packets "$d")" >"$out/$path-$d.packets"
	done
	local -a jobs=()
	for d in "$@"; do
		fetch "$d" "profile?seconds=$SECONDS_CPU" "$out/$path-$d.cpu.pb.gz" &
		jobs+=($!)
	done
	wait "${jobs[@]}"
	for d in "$@"; do
		fetch "$d" allocs "$out/$path-$d.allocs1.pb.gz"
		echo "after $(packets "$d")" >>"$out/$path-$d.packets"
	done
	echo "$path end $(cat /proc/loadavg)" >>"$out/loadavg"
	wait "$client"
	wait || true
}

# The control: the same CPU profile of an idle daemon, so that the
# allocations the profiler and its HTTP handler make themselves can be
# told from the data path's (idle-a.packets).
echo "idle: profiling a with no traffic for ${SECONDS_CPU} s…" >&2
echo "before $(packets a)" >"$out/idle-a.packets"
fetch a "profile?seconds=$SECONDS_CPU" "$out/idle-a.cpu.pb.gz"
echo "after $(packets a)" >>"$out/idle-a.packets"
echo "1 hop: profiling a (sender) and b (receiver) for ${SECONDS_CPU} s…" >&2
profile pcd1 "$NS_B" "$ADDR_B" a b
echo "2 hops: profiling a, b (middle) and c for ${SECONDS_CPU} s…" >&2
profile pcd2 "$NS_C" "$ADDR_C" a b c
echo "done: $out" >&2
