#!/usr/bin/env bash
# Data-plane benchmark (issue 14): iperf3 over a bare veth (the kernel),
# over wireguard-go at one hop (a–b), and over the pineconed overlay at one
# hop (a–b) and two hops (a–b–c), all in one run. Each path gets one TCP
# stream and `-P 4` streams; ping runs during every stream (median, p90,
# loss) and on the idle path first. Each daemon's CPU time (Mbit/s per core
# used) and idle and peak VmRSS are reported, then every ratio.
#
# Run as root from anywhere in the repository:
#   bench/throughput.sh            # 3 rounds of 10 s per path
#   DURATION=30 ROUNDS=5 bench/throughput.sh
#   PINECONED=/path/pineconed PINECONECTL=/path/pineconectl bench/throughput.sh
#   LOGDIR=/tmp/bench-logs bench/throughput.sh   # keep iperf3 and daemon logs
#   WIREGUARD_GO=/path/wireguard bench/throughput.sh
#   WIREGUARD_GO=none bench/throughput.sh        # skip wireguard-go
#   PINECONED_ARGS="-debug-pprof 127.0.0.1:6060" bench/throughput.sh
#                                      # extra flags for every pineconed
#   HOOK=bench/profile.sh bench/throughput.sh    # set up, run HOOK, clean up
#
# With HOOK set, the namespaces and daemons are set up as for a run, then
# HOOK runs with NS_A NS_B NS_C, ADDR_B ADDR_C (overlay addresses) and
# PID_A PID_B PID_C (the daemons) in its environment instead of the
# measurements, and the script exits with its status after cleaning up.
#
# Needs ip (iproute2), iperf3, ping, go. For wireguard-go also the `wg`
# tool (apt-get install wireguard-tools) and the wireguard-go binary
# (go install golang.zx2c4.com/wireguard@latest, found as wireguard-go in
# PATH or $(go env GOPATH)/bin/wireguard); without them that path is
# skipped with a note. It makes its own network namespaces and
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
for tool in ip iperf3 ping go; do
	command -v "$tool" >/dev/null || {
		echo "throughput.sh: $tool not found (apt-get install iproute2 iperf3)" >&2
		exit 2
	}
done

repo=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d /tmp/pcd-bench-XXXXXX)
tag=$$
ns_a="pcb-$tag-a" ns_b="pcb-$tag-b" ns_c="pcb-$tag-c"
# wireguard-go's UAPI sockets live in /var/run/wireguard, which the
# namespaces share, so the interface names are unique per run too.
wg_a="pw${tag}a" wg_b="pw${tag}b"
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
	rm -f "/var/run/wireguard/$wg_a.sock" "/var/run/wireguard/$wg_b.sock"
	if [[ -n ${LOGDIR:-} ]]; then
		mkdir -p "$LOGDIR"
		cp "$work"/*.log "$LOGDIR"/ 2>/dev/null || true
		for n in a b c; do
			cp "$work/$n/pineconed.log" "$LOGDIR/pineconed-$n.log" 2>/dev/null || true
		done
		cp "$work"/wireguard-*.log "$LOGDIR"/ 2>/dev/null || true
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

# wireguard-go: found unless WIREGUARD_GO=none; skipped with a note if the
# binary or the wg tool is missing.
wg_go=${WIREGUARD_GO:-}
wg_note=""
if [[ $wg_go == none ]]; then
	wg_go="" wg_note="skipped (WIREGUARD_GO=none)"
elif [[ -z $wg_go ]]; then
	wg_go=$(command -v wireguard-go || true)
	if [[ -z $wg_go ]]; then
		gobin=$(go env GOBIN)
		wg_go=${gobin:-$(go env GOPATH)/bin}/wireguard
		[[ -x $wg_go ]] || wg_go=""
	fi
	[[ -n $wg_go ]] || wg_note="skipped: no wireguard-go (go install golang.zx2c4.com/wireguard@latest)"
fi
if [[ -n $wg_go ]] && ! command -v wg >/dev/null; then
	wg_go="" wg_note="skipped: no wg tool (apt-get install wireguard-tools)"
fi

# One pineconed per namespace: a dials b, b dials c.
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
	# PINECONED_ARGS is split on spaces on purpose: a list of flags.
	# shellcheck disable=SC2086
	ip netns exec "$ns" "$work/pineconed" -config "$dir/pineconed.toml" ${PINECONED_ARGS:-} >"$dir/pineconed.log" 2>&1 &
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

# wireguard-go a–b over link 1, tunnel addresses fd00:0:0:99::1 and ::2.
wg_addr_b=fd00:0:0:99::2
start_wg() { # start_wg NAME NS IFACE ADDR PEER_PUB PEER_ENDPOINT PEER_ADDR
	local name=$1 ns=$2 ifc=$3 a=$4 pub=$5 ep=$6 pa=$7
	WG_PROCESS_FOREGROUND=1 ip netns exec "$ns" "$wg_go" -f "$ifc" >"$work/wireguard-$name.log" 2>&1 &
	dpid[w$name]=$!
	wait_until "wireguard-go $ifc" 100 in_ns "$ns" wg show "$ifc" || { cat "$work/wireguard-$name.log" >&2; exit 1; }
	in_ns "$ns" wg set "$ifc" private-key "$work/wg-$name.key" listen-port 51820 \
		peer "$pub" endpoint "$ep" allowed-ips "$pa/128"
	ip -n "$ns" addr add "$a/64" dev "$ifc" nodad
	ip -n "$ns" link set "$ifc" up
}
if [[ -n $wg_go ]]; then
	(umask 077 && wg genkey >"$work/wg-a.key" && wg genkey >"$work/wg-b.key")
	start_wg a "$ns_a" "$wg_a" fd00:0:0:99::1 "$(wg pubkey <"$work/wg-b.key")" "[fd00:0:0:1::2]:51820" "$wg_addr_b"
	start_wg b "$ns_b" "$wg_b" "$wg_addr_b" "$(wg pubkey <"$work/wg-a.key")" "[fd00:0:0:1::1]:51820" fd00:0:0:99::1
	wait_until "a to reach b over wireguard-go" 300 in_ns "$ns_a" ping -6 -c 1 -W 1 "$wg_addr_b"
fi
daemons="a b c"
if [[ -n ${HOOK:-} ]]; then
	status=0
	NS_A=$ns_a NS_B=$ns_b NS_C=$ns_c ADDR_B=$addr_b ADDR_C=$addr_c \
		PID_A=${dpid[a]} PID_B=${dpid[b]} PID_C=${dpid[c]} "$HOOK" || status=$?
	exit "$status"
fi
[[ -n $wg_go ]] && daemons+=" wa wb"

clk_tck=$(getconf CLK_TCK)
# cpu_ticks PID: utime + stime (fields 14 and 15 of /proc/PID/stat, counted
# after the command name, which may contain spaces).
cpu_ticks() { awk '{ sub(/^.*\) /, ""); print $12 + $13 }' "/proc/$1/stat"; }
rss_kib() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status"; }

# ping_times NS ADDRESS COUNT INTERVAL FILE: append one RTT (ms) per reply
# to FILE and "sent received" to FILE.loss. Bounded by a deadline.
ping_times() {
	local ns=$1 a=$2 count=$3 ival=$4 file=$5 out
	out=$(in_ns "$ns" ping -6 -n -i "$ival" -c "$count" -w $((count + 5)) "$a" 2>&1) || true
	awk '/time=/ { for (i = 1; i <= NF; i++) if ($i ~ /^time=/) { sub(/time=/, "", $i); print $i } }' <<<"$out" >>"$file"
	awk '/packets transmitted/ { print $1, $4 }' <<<"$out" >>"$file.loss"
}

# Idle RTT and idle RSS, before any load.
declare -A target server idle_rss
target[veth]=fd00:0:0:1::2 server[veth]=$ns_b
target[pcd1]=$addr_b server[pcd1]=$ns_b
target[pcd2]=$addr_c server[pcd2]=$ns_c
paths="veth pcd1 pcd2"
if [[ -n $wg_go ]]; then
	target[wg1]=$wg_addr_b server[wg1]=$ns_b
	paths="veth wg1 pcd1 pcd2"
fi
sleep 1
for n in $daemons; do idle_rss[$n]=$(rss_kib "${dpid[$n]}"); done
echo "idle ping (20 × 0.1 s per path)…" >&2
for p in $paths; do ping_times "$ns_a" "${target[$p]}" 20 0.1 "$work/idle-$p"; done

# measure KEY PATH STREAMS: one iperf3 run of STREAMS parallel streams from
# a to the path's target with ping (every 0.2 s) meanwhile, adding its
# Mbit/s to rates[KEY], its retransmits to retr[KEY], the pings to
# $work/load-KEY, each daemon's CPU ticks to cpu[KEY,daemon] and raising
# peak[daemon] to the largest VmRSS sampled every 0.2 s meanwhile.
declare -A rates retr cpu peak wall
# A fourth argument "noping" runs the stream without pings: the baseline
# for "the stream keeps >= 90 % of its throughput under pings".
measure() {
	local key=$1 path=$2 streams=$3 pings=${4:-ping} n sampler client rate re out t0
	local srv=${server[$path]} a=${target[$path]}
	local -A before
	t0=$(date +%s%N)
	for n in $daemons; do
		before[$n]=$(cpu_ticks "${dpid[$n]}")
		echo "${peak[$n]:-0}" >"$work/peak-$n"
	done
	(
		while :; do
			for n in $daemons; do
				r=$(rss_kib "${dpid[$n]}" 2>/dev/null || echo 0)
				p=$(cat "$work/peak-$n")
				if ((r > p)); then echo "$r" >"$work/peak-$n"; fi
			done
			sleep 0.2
		done
	) &
	sampler=$!
	in_ns "$srv" iperf3 -s -1 -B "$a" >"$work/iperf3-server.log" 2>&1 &
	wait_until "iperf3 server on $a" 100 sh -c "ip netns exec '$srv' ss -Hltn 'sport = :5201' | grep -q ."
	in_ns "$ns_a" iperf3 -c "$a" -t "$DURATION" -P "$streams" -f m >"$work/iperf3-client.out" 2>&1 &
	client=$!
	# Pings over the stream's steady part: from 0.5 s in, to 0.5 s before
	# its end.
	if [[ $pings == ping ]]; then
		sleep 0.5
		ping_times "$ns_a" "$a" $(((DURATION * 10 - 10) / 2 > 0 ? (DURATION * 10 - 10) / 2 : 1)) 0.2 "$work/load-$key"
	fi
	wait "$client" || {
		echo "iperf3 to $a failed:" >&2
		cat "$work/iperf3-client.out" >&2
		exit 1
	}
	kill "$sampler" 2>/dev/null || true
	wait "$sampler" 2>/dev/null || true
	out=$(cat "$work/iperf3-client.out")
	printf '=== iperf3 -P %s %s -> %s (%s)\n%s\n' "$streams" "$ns_a" "$a" "$(date +%T)" "$out" >>"$work/iperf3.log"
	# "Mbit/s retransmits": the receiver's rate, the sender's Retr column
	# (the last receiver/sender line: the SUM line with -P).
	read -r rate re < <(awk '/receiver/ { for (i = 1; i < NF; i++) if ($(i+1) == "Mbits/sec") v = $i }
		/sender/ { for (i = 1; i < NF; i++) if ($i == "Mbits/sec") r = $(i+1) }
		END { if (v == "") exit 1; print v, (r == "" ? "?" : r) }' <<<"$out") || true
	if [[ -z ${rate:-} ]]; then
		echo "throughput.sh: iperf3 to $a gave no result" >&2
		exit 1
	fi
	rates[$key]+="$rate "
	retr[$key]=$((${retr[$key]:-0} + ${re/\?/0}))
	for n in $daemons; do
		cpu[$key,$n]=$((${cpu[$key,$n]:-0} + $(cpu_ticks "${dpid[$n]}") - before[$n]))
		peak[$n]=$(cat "$work/peak-$n")
	done
	# Wall time of the CPU window, in ms (it includes iperf3's set-up).
	wall[$key]=$((${wall[$key]:-0} + ($(date +%s%N) - t0) / 1000000))
}

# Rounds interleave the paths, so that a noisy neighbour on a shared
# machine hits all of them alike; the medians are compared.
for round in $(seq "$ROUNDS"); do
	echo "round $round/$ROUNDS: $paths, 1 stream with and without pings, 4 and 8 streams (${DURATION} s each)…" >&2
	for p in $paths; do
		measure "$p" "$p" 1
		measure "$p-np" "$p" 1 noping
		measure "$p-P4" "$p" 4
		measure "$p-P8" "$p" 8
	done
done

median() { tr ' ' '\n' <<<"$1" | grep . | sort -g | awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else printf "%.0f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
# rtt FILE: "median / p90 ms, loss %" of the RTTs in FILE and FILE.loss.
rtt() {
	local med p90 loss
	read -r med p90 < <(sort -g "$1" | awk '{ v[NR] = $1 } END { if (NR == 0) { print "- -"; exit }
		m = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
		k = int(0.9 * NR + 0.999); if (k < 1) k = 1
		printf "%.3f %.3f\n", m, v[k] }')
	loss=$(awk '{ s += $1; r += $2 } END { printf "%.1f", s ? 100 * (s - r) / s : 100 }' "$1.loss")
	printf '%s / %s ms, %s%% (n=%s)' "$med" "$p90" "$loss" "$(wc -l <"$1")"
}
rtt_med() { sort -g "$1" | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
mtu() { ip -n "$1" -o link show dev "$2" | awk '{ for (i = 1; i < NF; i++) if ($i == "mtu") print $(i+1) }'; }
div() { awk -v a="$1" -v b="$2" 'BEGIN { if (b == 0) print "-"; else printf "%.2f", a / b }'; }
# involved PATH: the daemons that carry the path's packets.
involved() {
	case $1 in
	veth) echo "" ;;
	wg1) echo "wa wb" ;;
	pcd1) echo "a b" ;;
	pcd2) echo "a b c" ;;
	esac
}
# cores KEY: CPU cores in use by the path's daemons, averaged over its runs.
cores() {
	local n t=0
	for n in $(involved "${1%-P[48]}"); do t=$((t + cpu[$1,$n])); done
	awk -v t="$t" -v k="$clk_tck" -v ms="${wall[$1]}" 'BEGIN { printf "%.2f", t / k / (ms / 1000) }'
}
label() {
	case $1 in
	veth) echo "veth a->b (kernel)" ;;
	wg1) echo "wireguard-go 1 hop a->b" ;;
	pcd1) echo "pineconed 1 hop a->b" ;;
	pcd2) echo "pineconed 2 hops a->b->c" ;;
	esac
}
declare -A med
for p in $paths; do
	med[$p]=$(median "${rates[$p]}")
	med[$p-P4]=$(median "${rates[$p-P4]}")
	med[$p-P8]=$(median "${rates[$p-P8]}")
	med[$p-np]=$(median "${rates[$p-np]}")
done

echo
echo "data plane: iperf3 TCP, ${ROUNDS} rounds of ${DURATION} s per path and stream count; ping every 0.2 s during each run"
echo "host: $(nproc) CPUs ($(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)), kernel $(uname -r), $(go version | awk '{ print $3 }'), commit $(git -C "$repo" rev-parse --short HEAD 2>/dev/null || echo unknown), $(date -u '+%Y-%m-%d %H:%M UTC')"
mtus="MTU: veth $(mtu "$ns_a" "pb${tag}l1a"), pineconed TUN $(mtu "$ns_a" pcd0)"
[[ -n $wg_go ]] && mtus+=", wireguard-go $(mtu "$ns_a" "$wg_a") ($("$wg_go" --version 2>/dev/null | head -1 | awk '{ print $2 }'))"
echo "$mtus"
[[ -n $wg_note ]] && echo "wireguard-go: $wg_note"
echo
printf '%-26s %9s %9s %9s %9s %9s %9s %7s %7s %10s   %s\n' "path" "1 stream" "no ping" "ping/no" "-P 4" "-P 8" "P8/1" "retr" "retrP4" "Mbit/s/core" "each 1-stream run"
for p in $paths; do
	c=$(cores "$p")
	if [[ $p == veth ]]; then mpc="-"; else mpc=$(div "${med[$p]}" "$c"); fi
	printf '%-26s %9s %9s %9s %9s %9s %9s %7s %7s %10s   %s\n' "$(label "$p")" "${med[$p]}" "${med[$p-np]}" \
		"$(div "${med[$p]}" "${med[$p-np]}")" "${med[$p-P4]}" "${med[$p-P8]}" \
		"$(div "${med[$p-P8]}" "${med[$p]}")" "${retr[$p]}" "${retr[$p-P4]}" "$mpc" "${rates[$p]}"
done
echo
echo "ping RTT (median / p90, loss):"
printf '%-26s %-30s %-34s %-34s %-34s\n' "path" "idle" "during 1 stream" "during -P 4" "during -P 8"
for p in $paths; do
	printf '%-26s %-30s %-34s %-34s %-34s\n' "$(label "$p")" "$(rtt "$work/idle-$p")" "$(rtt "$work/load-$p")" "$(rtt "$work/load-$p-P4")" "$(rtt "$work/load-$p-P8")"
done
echo
echo "daemon CPU, cores in use during the path's runs (user+sys / wall), and VmRSS:"
printf '%-26s %8s %8s %8s\n' "path" "1 stream" "-P 4" "-P 8"
for p in $paths; do
	[[ $p == veth ]] && continue
	printf '%-26s %8s %8s %8s\n' "$(label "$p")" "$(cores "$p")" "$(cores "$p-P4")" "$(cores "$p-P8")"
done
for n in $daemons; do
	case $n in w?) what="wireguard-go ${n#w}" ;; *) what="pineconed $n" ;; esac
	printf '%-16s idle %4d MiB, peak %4d MiB\n' "$what" $((idle_rss[$n] / 1024)) $((peak[$n] / 1024))
done
echo
echo "ratios (throughput, 1 stream / -P 4; idle RTT median):"
ratio_line() { # ratio_line LABEL NUM DEN
	printf '  %-32s %s / %s   idle RTT %s\n' "$1" "$(div "${med[$2]}" "${med[$3]}")" "$(div "${med[$2-P4]}" "${med[$3-P4]}")" \
		"$(div "$(rtt_med "$work/idle-$2")" "$(rtt_med "$work/idle-$3")")"
}
ratio_line "pineconed 1 hop / veth" pcd1 veth
ratio_line "pineconed 2 hops / 1 hop" pcd2 pcd1
if [[ -n $wg_go ]]; then
	ratio_line "wireguard-go / veth" wg1 veth
	ratio_line "pineconed 1 hop / wireguard-go" pcd1 wg1
	printf '  %-32s %s\n' "Mbit/s per core, pcd / wg" "$(div "$(div "${med[pcd1]}" "$(cores pcd1)")" "$(div "${med[wg1]}" "$(cores wg1)")")"
fi

# goal LABEL VALUE OP LIMIT: one line of the summary against issue 14's goals.
goal() {
	local verdict
	verdict=$(awk -v v="$2" -v l="$4" -v op="$3" 'BEGIN { if (v == "" || v == "-") { print "n/a"; exit }
		ok = (op == ">=") ? (v + 0 >= l + 0) : (v + 0 <= l + 0); print ok ? "met" : "NOT met" }')
	printf '  %-44s %10s  (goal %s %s)  %s\n' "$1" "$2" "$3" "$4" "$verdict"
}
load_pct() { sort -g "$1" | awk -v q="$2" '{ v[NR] = $1 } END { if (NR == 0) { print "-"; exit }
	if (q == 50) { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2; exit }
	k = int(0.9 * NR + 0.999); if (k < 1) k = 1; print v[k] }'; }
loss_pct() { awk '{ s += $1; r += $2 } END { printf "%.1f", s ? 100 * (s - r) / s : 100 }' "$1.loss"; }
echo
echo "summary against the issue 14 goals:"
goal "1 hop / veth (1 stream)" "$(div "${med[pcd1]}" "${med[veth]}")" ">=" 0.4
goal "2 hops / 1 hop (1 stream)" "$(div "${med[pcd2]}" "${med[pcd1]}")" ">=" 0.8
goal "idle RTT 1 hop, ms" "$(rtt_med "$work/idle-pcd1")" "<=" 0.3
goal "idle RTT, 2nd hop adds, ms" "$(awk -v a="$(rtt_med "$work/idle-pcd2")" -v b="$(rtt_med "$work/idle-pcd1")" 'BEGIN { printf "%.3f", a - b }')" "<=" 0.1
goal "loaded RTT 1 hop median, ms" "$(load_pct "$work/load-pcd1" 50)" "<=" 1
goal "loaded RTT 1 hop p90, ms" "$(load_pct "$work/load-pcd1" 90)" "<=" 2
goal "loaded ping loss 1 hop, %" "$(loss_pct "$work/load-pcd1")" "<=" 0
goal "loaded RTT 2 hops median, ms" "$(load_pct "$work/load-pcd2" 50)" "<=" 2
goal "1 hop stream with pings / without" "$(div "${med[pcd1]}" "${med[pcd1-np]}")" ">=" 0.9
goal "1 hop -P 4 / 1 stream" "$(div "${med[pcd1-P4]}" "${med[pcd1]}")" ">=" 1
goal "1 hop -P 8 / 1 stream" "$(div "${med[pcd1-P8]}" "${med[pcd1]}")" ">=" 1
if [[ -n $wg_go ]]; then
	goal "Mbit/s per core, pineconed / wireguard-go" "$(div "$(div "${med[pcd1]}" "$(cores pcd1)")" "$(div "${med[wg1]}" "$(cores wg1)")")" ">=" 1
fi
for n in a b c; do
	goal "idle VmRSS pineconed $n, MiB" $((idle_rss[$n] / 1024)) "<=" 20
done
