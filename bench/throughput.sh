#!/usr/bin/env bash
# Overlay throughput benchmark: iperf3 over a bare veth, then over the
# pineconed overlay at one hop (a–b) and two hops (a–b–c), all in one run,
# with each daemon's CPU time and memory during the overlay runs.
#
# Run as root from anywhere in the repository:
#   bench/throughput.sh            # 3 rounds of 10 s per path
#   DURATION=30 ROUNDS=5 bench/throughput.sh
#   PINECONED=/path/pineconed PINECONECTL=/path/pineconectl bench/throughput.sh
#   LOGDIR=/tmp/bench-logs bench/throughput.sh   # keep iperf3 and daemon logs
#
# Needs ip (iproute2), iperf3, go. It makes its own network namespaces and
# veths with per-run unique names and ULA addresses (fd00:0:0:N::/64), and
# removes them on exit. No traffic leaves the namespaces.
#
# The figures are for comparison within one run: the overlay/veth ratio is
# the number to watch, the absolute Mbit/s depend on the machine.
set -euo pipefail

DURATION=${DURATION:-10}
ROUNDS=${ROUNDS:-3}
if ! [[ $DURATION =~ ^[0-9]+$ ]] || ((DURATION < 1 || DURATION > 300)); then
	echo "DURATION must be 1..300 seconds" >&2
	exit 2
fi
if ! [[ $ROUNDS =~ ^[0-9]+$ ]] || ((ROUNDS < 1 || ROUNDS > 20)); then
	echo "ROUNDS must be 1..20" >&2
	exit 2
fi
if [[ $(id -u) != 0 ]]; then
	echo "throughput.sh: needs root (network namespaces, veths, TUN devices)" >&2
	exit 2
fi
for tool in ip iperf3 go; do
	command -v "$tool" >/dev/null || {
		echo "throughput.sh: $tool not found (apt-get install iproute2 iperf3)" >&2
		exit 2
	}
done

repo=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d /tmp/pcd-bench-XXXXXX)
tag=$$
ns_a="pcb-$tag-a" ns_b="pcb-$tag-b" ns_c="pcb-$tag-c"
cleanup() {
	local pid pids
	# Only our own background jobs that are still running (jobs -p), so a
	# PID that ended and was reused is never signalled.
	pids=$(jobs -p)
	for pid in $pids; do
		kill -TERM "$pid" 2>/dev/null || true
	done
	for pid in $pids; do
		# Bounded wait: 50 × 0.1 s, then SIGKILL.
		for _ in $(seq 50); do
			kill -0 "$pid" 2>/dev/null || break
			sleep 0.1
		done
		kill -KILL "$pid" 2>/dev/null || true
	done
	for ns in "$ns_a" "$ns_b" "$ns_c"; do
		ip netns del "$ns" 2>/dev/null || true
	done
	if [[ -n ${LOGDIR:-} ]]; then
		mkdir -p "$LOGDIR"
		cp "$work"/*.log "$LOGDIR"/ 2>/dev/null || true
		for n in a b c; do
			cp "$work/$n/pineconed.log" "$LOGDIR/pineconed-$n.log" 2>/dev/null || true
		done
	fi
	rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

in_ns() { local ns=$1; shift; ip netns exec "$ns" "$@"; }

# wait_until DESCRIPTION TRIES COMMAND…: run COMMAND every 0.1 s until it
# succeeds, at most TRIES times.
wait_until() {
	local what=$1 tries=$2
	shift 2
	for _ in $(seq "$tries"); do
		if "$@" >/dev/null 2>&1; then
			return 0
		fi
		sleep 0.1
	done
	echo "throughput.sh: timed out waiting for $what" >&2
	return 1
}

# PINECONED and PINECONECTL may name prebuilt binaries to measure instead.
if [[ -n ${PINECONED:-} && -n ${PINECONECTL:-} ]]; then
	cp "$PINECONED" "$work/pineconed"
	cp "$PINECONECTL" "$work/pineconectl"
else
	echo "building pineconed and pineconectl…" >&2
	(cd "$repo" && go build -o "$work/pineconed" ./cmd/pineconed && go build -o "$work/pineconectl" ./cmd/pineconectl)
fi

# Namespaces and veths: a –(link 1)– b –(link 2)– c.
for ns in "$ns_a" "$ns_b" "$ns_c"; do
	ip netns add "$ns"
	ip -n "$ns" link set lo up
	in_ns "$ns" sysctl -qw net.ipv6.conf.all.accept_dad=0 net.ipv6.conf.default.accept_dad=0
done
link() { # link N NS_LEFT NS_RIGHT
	local n=$1 left=$2 right=$3
	ip link add "pb${tag}l${n}a" netns "$left" type veth peer name "pb${tag}l${n}b" netns "$right"
	ip -n "$left" addr add "fd00:0:0:$n::1/64" dev "pb${tag}l${n}a" nodad
	ip -n "$right" addr add "fd00:0:0:$n::2/64" dev "pb${tag}l${n}b" nodad
	ip -n "$left" link set "pb${tag}l${n}a" up
	ip -n "$right" link set "pb${tag}l${n}b" up
}
link 1 "$ns_a" "$ns_b"
link 2 "$ns_b" "$ns_c"

# iperf NS_SERVER NS_CLIENT ADDRESS: one TCP test of DURATION seconds,
# prints the receiver's Mbit/s.
iperf() {
	local srv=$1 cli=$2 addr=$3 out
	ip netns exec "$srv" iperf3 -s -1 -B "$addr" >"$work/iperf3-server.log" 2>&1 &
	wait_until "iperf3 server on $addr" 100 sh -c "ip netns exec '$srv' ss -Hltn 'sport = :5201' | grep -q ."
	out=$(in_ns "$cli" iperf3 -c "$addr" -t "$DURATION" -f m 2>&1) || {
		echo "iperf3 to $addr failed:" >&2
		echo "$out" >&2
		return 1
	}
	printf '=== iperf3 %s -> %s (%s)\n%s\n' "$cli" "$addr" "$(date +%T)" "$out" >>"$work/iperf3.log"
	# "Mbit/s retransmits": the receiver's rate, the sender's Retr column.
	awk '/receiver/ { for (i = 1; i < NF; i++) if ($(i+1) == "Mbits/sec") v = $i }
		/sender/ { for (i = 1; i < NF; i++) if ($i == "Mbits/sec") r = $(i+1) }
		END { if (v == "") exit 1; print v, (r == "" ? "?" : r) }' <<<"$out"
}

# One daemon per namespace: a dials b, b dials c.
declare -A dpid
start_daemon() { # start_daemon NAME NS STATIC_URI
	local name=$1 ns=$2 static=$3 dir="$work/$1"
	mkdir -p "$dir"
	cat >"$dir/pineconed.toml" <<EOF
private_key_file = "$dir/private.key"
log_level = "info"
[tun]
name = "pcd0"
[peers]
listen = ["tcp://[::]:65432"]
static = [$static]
[multicast]
enable = false
[admin]
socket = "$dir/admin.sock"
[metrics]
listen = ""
EOF
	# ip netns exec execs the daemon: $! is its PID.
	ip netns exec "$ns" "$work/pineconed" -config "$dir/pineconed.toml" >"$dir/pineconed.log" 2>&1 &
	dpid[$name]=$!
	wait_until "pineconed in $ns to answer" 200 "$work/pineconectl" --socket "$dir/admin.sock" status ||
		{ cat "$dir/pineconed.log" >&2; exit 1; }
}
start_daemon a "$ns_a" '"tcp://[fd00:0:0:1::2]:65432"'
start_daemon b "$ns_b" '"tcp://[fd00:0:0:2::2]:65432"'
start_daemon c "$ns_c" ''
addr() { "$work/pineconed" -address -config "$work/$1/pineconed.toml"; }
addr_b=$(addr b)
addr_c=$(addr c)
wait_until "a to reach b over the overlay" 300 in_ns "$ns_a" ping -6 -c 1 -W 1 "$addr_b"
wait_until "a to reach c over the overlay" 300 in_ns "$ns_a" ping -6 -c 1 -W 1 "$addr_c"

clk_tck=$(getconf CLK_TCK)
# cpu_ticks PID: utime + stime (fields 14 and 15 of /proc/PID/stat, counted
# after the command name, which may contain spaces).
cpu_ticks() { awk '{ sub(/^.*\) /, ""); print $12 + $13 }' "/proc/$1/stat"; }
rss_kib() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status"; }

# measure KEY NS_SERVER ADDRESS: one iperf3 run from a to ADDRESS, adding
# its Mbit/s to rates[KEY], its retransmits to retr[KEY], each daemon's CPU
# ticks to cpu[KEY,daemon] and raising peak[KEY,daemon] to the largest
# VmRSS sampled every 0.2 s meanwhile.
declare -A rates retr cpu peak
measure() {
	local key=$1 srv=$2 target=$3 n sampler rate re
	local -A before
	for n in a b c; do
		before[$n]=$(cpu_ticks "${dpid[$n]}")
		echo "${peak[$key,$n]:-0}" >"$work/peak-$n"
	done
	(
		while :; do
			for n in a b c; do
				r=$(rss_kib "${dpid[$n]}" 2>/dev/null || echo 0)
				p=$(cat "$work/peak-$n")
				if ((r > p)); then echo "$r" >"$work/peak-$n"; fi
			done
			sleep 0.2
		done
	) &
	sampler=$!
	read -r rate re < <(iperf "$srv" "$ns_a" "$target") || true
	kill "$sampler" 2>/dev/null || true
	wait "$sampler" 2>/dev/null || true
	if [[ -z ${rate:-} ]]; then
		echo "throughput.sh: iperf3 to $target gave no result" >&2
		exit 1
	fi
	rates[$key]+="$rate "
	retr[$key]=$((${retr[$key]:-0} + ${re/\?/0}))
	for n in a b c; do
		cpu[$key,$n]=$((${cpu[$key,$n]:-0} + $(cpu_ticks "${dpid[$n]}") - before[$n]))
		peak[$key,$n]=$(cat "$work/peak-$n")
	done
}

# Rounds interleave the three paths, so that a noisy neighbour on a shared
# machine hits all of them alike; the medians are compared.
for round in $(seq "$ROUNDS"); do
	echo "round $round/$ROUNDS: veth, overlay 1 hop, overlay 2 hops (${DURATION} s each)…" >&2
	measure veth "$ns_b" fd00:0:0:1::2
	measure hop1 "$ns_b" "$addr_b"
	measure hop2 "$ns_c" "$addr_c"
done

median() { tr ' ' '\n' <<<"$1" | grep . | sort -g | awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else printf "%.0f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
mtu() { ip -n "$1" -o link show dev "$2" | awk '{ for (i = 1; i < NF; i++) if ($i == "mtu") print $(i+1) }'; }
veth=$(median "${rates[veth]}")
ratio() { awk -v o="$1" -v v="$veth" 'BEGIN { printf "%.2f", o / v }'; }
secs=$((ROUNDS * DURATION))
cpu_text() { awk -v d="$1" -v t="$clk_tck" -v s="$secs" 'BEGIN { printf "%.1f s (%.0f%%)", d / t, 100 * d / t / s }'; }

echo
echo "pineconed throughput: iperf3 TCP, 1 stream, ${ROUNDS} rounds of ${DURATION} s per path"
echo "host: $(nproc) CPUs, kernel $(uname -r), $(go version | awk '{ print $3 }'), commit $(git -C "$repo" rev-parse --short HEAD 2>/dev/null || echo unknown)"
echo "MTU: veth $(mtu "$ns_a" "pb${tag}l1a"), overlay TUN $(mtu "$ns_a" pcd0)"
echo
printf '%-24s %14s %14s %12s   %s\n' "path" "median Mbit/s" "ratio to veth" "TCP retrans" "each run (Mbit/s)"
for key in veth hop1 hop2; do
	case $key in
	veth) label="veth a->b (no overlay)" ;;
	hop1) label="overlay 1 hop a->b" ;;
	hop2) label="overlay 2 hops a->b->c" ;;
	esac
	m=$(median "${rates[$key]}")
	printf '%-24s %14s %14s %12s   %s\n' "$label" "$m" "$(ratio "$m")" "${retr[$key]}" "${rates[$key]}"
done
echo
echo "daemon CPU time (user+sys, % of one core) and peak VmRSS over all rounds of each path:"
printf '%-7s %-30s %-30s %-30s\n' "daemon" "veth (daemons idle)" "1 hop (a->b)" "2 hops (a->b->c)"
for n in a b c; do
	printf '%-7s %-30s %-30s %-30s\n' "$n" \
		"$(cpu_text "${cpu[veth,$n]}"), $((${peak[veth,$n]} / 1024)) MiB" \
		"$(cpu_text "${cpu[hop1,$n]}"), $((${peak[hop1,$n]} / 1024)) MiB" \
		"$(cpu_text "${cpu[hop2,$n]}"), $((${peak[hop2,$n]} / 1024)) MiB"
done
