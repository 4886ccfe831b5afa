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
#   ALT_PINECONED=/path/pineconed ALT_PINECONECTL=/path/pineconectl \
#     bench/throughput.sh   # a second line of namespaces runs these binaries
#                           # (paths alt1, alt2), measured in the same rounds
#   PATHS="pcd2 alt2" KINDS="1 P4" bench/throughput.sh   # only these
#   PROFILE_DIR=/tmp/prof bench/throughput.sh   # CPU profile of every daemon
#                           # on a pineconed path during its first 1-stream run
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
# KINDS: which runs each path gets per round: 1 (one stream with pings), np
# (one stream, no pings), P4, P8 (parallel streams with pings).
KINDS=${KINDS:-1 np P4 P8}
for k in $KINDS; do
	case $k in 1 | np | P4 | P8) ;; *)
		echo "KINDS: unknown run kind $k (1, np, P4, P8)" >&2
		exit 2
		;;
	esac
done
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
# The ALT line: the same three namespaces again, for the second binary.
ns_xa="pcb-$tag-xa" ns_xb="pcb-$tag-xb" ns_xc="pcb-$tag-xc"
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
	for ns in "$ns_a" "$ns_b" "$ns_c" "$ns_xa" "$ns_xb" "$ns_xc"; do
		ip netns del "$ns" 2>/dev/null || true
	done
	rm -f "/var/run/wireguard/$wg_a.sock" "/var/run/wireguard/$wg_b.sock"
	if [[ -n ${LOGDIR:-} ]]; then
		mkdir -p "$LOGDIR"
		cp "$work"/*.log "$LOGDIR"/ 2>/dev/null || true
		for n in a b c xa xb xc; do
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
alt=""
if [[ -n ${ALT_PINECONED:-} || -n ${ALT_PINECONECTL:-} ]]; then
	if [[ -z ${ALT_PINECONED:-} || -z ${ALT_PINECONECTL:-} ]]; then
		echo "throughput.sh: ALT_PINECONED and ALT_PINECONECTL go together" >&2
		exit 2
	fi
	mkdir -p "$work/alt"
	cp "$ALT_PINECONED" "$work/alt/pineconed"
	cp "$ALT_PINECONECTL" "$work/alt/pineconectl"
	alt=1
fi

# Namespaces and veths: a –(link 1)– b –(link 2)– c, and with ALT
# binaries xa –(link 3)– xb –(link 4)– xc.
lines="$ns_a $ns_b $ns_c"
[[ -n $alt ]] && lines+=" $ns_xa $ns_xb $ns_xc"
for ns in $lines; do
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
if [[ -n $alt ]]; then
	link 3 "$ns_xa" "$ns_xb"
	link 4 "$ns_xb" "$ns_xc"
fi

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
declare -A dpid dns
if [[ -n ${PROFILE_DIR:-} ]]; then
	command -v curl >/dev/null || {
		echo "throughput.sh: PROFILE_DIR needs curl" >&2
		exit 2
	}
	mkdir -p "$PROFILE_DIR"
fi
start_daemon() { # start_daemon NAME NS STATIC_URI [BINDIR]
	local name=$1 ns=$2 static=$3 bin=${4:-$work} dir="$work/$1"
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
	# Each namespace has its own loopback: the same pprof port in all.
	# PINECONED_ARGS is split on spaces on purpose: a list of flags.
	# shellcheck disable=SC2086
	ip netns exec "$ns" "$bin/pineconed" -config "$dir/pineconed.toml" ${PROFILE_DIR:+-debug-pprof 127.0.0.1:6060} ${PINECONED_ARGS:-} >"$dir/pineconed.log" 2>&1 &
	dpid[$name]=$! dns[$name]=$ns
	wait_until "pineconed in $ns to answer" 200 "$bin/pineconectl" --socket "$dir/admin.sock" status ||
		{ cat "$dir/pineconed.log" >&2; exit 1; }
}
start_daemon a "$ns_a" '"tcp://[fd00:0:0:1::2]:65432"'
start_daemon b "$ns_b" '"tcp://[fd00:0:0:2::2]:65432"'
start_daemon c "$ns_c" ''
addr() { "$work/pineconed" -address -config "$work/$1/pineconed.toml"; }
addr_b=$(addr b)
addr_c=$(addr c)
if [[ -n $alt ]]; then
	start_daemon xa "$ns_xa" '"tcp://[fd00:0:0:3::2]:65432"' "$work/alt"
	start_daemon xb "$ns_xb" '"tcp://[fd00:0:0:4::2]:65432"' "$work/alt"
	start_daemon xc "$ns_xc" '' "$work/alt"
	addr_xb=$(addr xb)
	addr_xc=$(addr xc)
fi
wait_until "a to reach b over the overlay" 300 in_ns "$ns_a" ping -6 -c 1 -W 1 "$addr_b"
wait_until "a to reach c over the overlay" 300 in_ns "$ns_a" ping -6 -c 1 -W 1 "$addr_c"
if [[ -n $alt ]]; then
	wait_until "xa to reach xb over the overlay" 300 in_ns "$ns_xa" ping -6 -c 1 -W 1 "$addr_xb"
	wait_until "xa to reach xc over the overlay" 300 in_ns "$ns_xa" ping -6 -c 1 -W 1 "$addr_xc"
fi

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
[[ -n $alt ]] && daemons+=" xa xb xc"

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
declare -A target server from idle_rss
target[veth]=fd00:0:0:1::2 server[veth]=$ns_b
target[pcd1]=$addr_b server[pcd1]=$ns_b
target[pcd2]=$addr_c server[pcd2]=$ns_c
for p in veth pcd1 pcd2 wg1; do from[$p]=$ns_a; done
all_paths="veth pcd1 pcd2"
if [[ -n $wg_go ]]; then
	target[wg1]=$wg_addr_b server[wg1]=$ns_b
	all_paths="veth wg1 pcd1 pcd2"
fi
if [[ -n $alt ]]; then
	target[alt1]=$addr_xb server[alt1]=$ns_xb from[alt1]=$ns_xa
	target[alt2]=$addr_xc server[alt2]=$ns_xc from[alt2]=$ns_xa
	all_paths+=" alt1 alt2"
fi
# PATHS keeps a subset (in the order above); the default is every path.
paths=""
for p in $all_paths; do
	if [[ -z ${PATHS:-} || " $PATHS " == *" $p "* ]]; then paths+="${paths:+ }$p"; fi
done
if [[ -z $paths ]]; then
	echo "throughput.sh: PATHS ($PATHS) names none of: $all_paths" >&2
	exit 2
fi
sleep 1
for n in $daemons; do idle_rss[$n]=$(rss_kib "${dpid[$n]}"); done
echo "idle ping (20 × 0.1 s per path)…" >&2
for p in $paths; do ping_times "${from[$p]}" "${target[$p]}" 20 0.1 "$work/idle-$p"; done

# involved PATH: the daemons that carry the path's packets.
involved() {
	case $1 in
	veth) echo "" ;;
	wg1) echo "wa wb" ;;
	pcd1) echo "a b" ;;
	pcd2) echo "a b c" ;;
	alt1) echo "xa xb" ;;
	alt2) echo "xa xb xc" ;;
	esac
}
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
	local srv=${server[$path]} a=${target[$path]} cl=${from[$path]}
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
	in_ns "$cl" iperf3 -c "$a" -t "$DURATION" -P "$streams" -f m >"$work/iperf3-client.out" 2>&1 &
	client=$!
	# The first 1-stream run of a pineconed path: profile its daemons.
	local profs=""
	if [[ -n ${PROFILE_DIR:-} && ($key == pcd? || $key == alt?) && ! -e $PROFILE_DIR/$key.done ]]; then
		touch "$PROFILE_DIR/$key.done"
		for n in $(involved "$path"); do
			in_ns "${dns[$n]}" curl -sS -m $((DURATION + 10)) -o "$PROFILE_DIR/$key-$n.pprof" \
				"http://127.0.0.1:6060/debug/pprof/profile?seconds=$((DURATION > 2 ? DURATION - 1 : 1))" &
			profs+=" $!"
		done
	fi
	# Pings over the stream's steady part: from 0.5 s in, to 0.5 s before
	# its end.
	if [[ $pings == ping ]]; then
		sleep 0.5
		ping_times "$cl" "$a" $(((DURATION * 10 - 10) / 2 > 0 ? (DURATION * 10 - 10) / 2 : 1)) 0.2 "$work/load-$key"
	fi
	wait "$client" || {
		echo "iperf3 to $a failed:" >&2
		cat "$work/iperf3-client.out" >&2
		exit 1
	}
	for n in $profs; do wait "$n" || echo "throughput.sh: a CPU profile failed" >&2; done
	kill "$sampler" 2>/dev/null || true
	wait "$sampler" 2>/dev/null || true
	out=$(cat "$work/iperf3-client.out")
	printf '=== iperf3 -P %s %s -> %s (%s)\n%s\n' "$streams" "$cl" "$a" "$(date +%T)" "$out" >>"$work/iperf3.log"
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
# With ALT binaries each pineconed path runs next to its ALT twin, and
# which of the two goes first alternates by round, so that a load that
# changes within a round does not favour one of them.
round_order() { # round_order ROUND
	local p order=""
	for p in $paths; do
		case $p in
		alt?) ;;
		pcd?)
			if [[ " $paths " != *" alt${p#pcd} "* ]]; then
				order+=" $p"
			elif (($1 % 2)); then
				order+=" $p alt${p#pcd}"
			else
				order+=" alt${p#pcd} $p"
			fi
			;;
		*) order+=" $p" ;;
		esac
	done
	# An ALT path whose twin is not measured runs on its own.
	for p in $paths; do
		[[ $p == alt? && " $paths " != *" pcd${p#alt} "* ]] && order+=" $p"
	done
	echo "$order"
}
for round in $(seq "$ROUNDS"); do
	order=$(round_order "$round")
	echo "round $round/$ROUNDS:$order; runs: $KINDS (${DURATION} s each)…" >&2
	for p in $order; do
		for k in $KINDS; do
			case $k in
			1) measure "$p" "$p" 1 ;;
			np) measure "$p-np" "$p" 1 noping ;;
			P4) measure "$p-P4" "$p" 4 ;;
			P8) measure "$p-P8" "$p" 8 ;;
			esac
		done
	done
done

# A run kind left out by KINDS has no figures: its files are empty and
# every figure made from them prints "-".
for p in $all_paths; do
	touch "$work/idle-$p" "$work/idle-$p.loss"
	for k in "" -np -P4 -P8; do
		touch "$work/load-$p$k" "$work/load-$p$k.loss"
		wall[$p$k]=${wall[$p$k]:-0} retr[$p$k]=${retr[$p$k]:-0} rates[$p$k]=${rates[$p$k]:-}
		for n in $daemons; do cpu[$p$k,$n]=${cpu[$p$k,$n]:-0}; done
	done
done
median() { tr ' ' '\n' <<<"$1" | sort -g | awk 'NF { v[++n] = $1 } END { if (n == 0) print "-"; else if (n % 2) print v[(n + 1) / 2]; else printf "%.0f\n", (v[n / 2] + v[n / 2 + 1]) / 2 }'; }
# rtt FILE: "median / p90 ms, loss %" of the RTTs in FILE and FILE.loss.
rtt() {
	local med p90 loss
	read -r med p90 < <(sort -g "$1" | awk '{ v[NR] = $1 } END { if (NR == 0) { print "- -"; exit }
		m = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
		k = int(0.9 * NR + 0.999); if (k < 1) k = 1
		printf "%.3f %.3f\n", m, v[k] }')
	loss=$(awk '{ s += $1; r += $2 } END { if (s) printf "%.1f", 100 * (s - r) / s; else printf "-" }' "$1.loss")
	printf '%s / %s ms, %s%% (n=%s)' "$med" "$p90" "$loss" "$(wc -l <"$1")"
}
rtt_med() { sort -g "$1" | awk '{ v[NR] = $1 } END { if (NR == 0) print "-"; else print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
mtu() { ip -n "$1" -o link show dev "$2" | awk '{ for (i = 1; i < NF; i++) if ($i == "mtu") print $(i+1) }'; }
div() { awk -v a="$1" -v b="$2" 'BEGIN { if (a == "" || a == "-" || b == "" || b == "-" || b == 0) print "-"; else printf "%.2f", a / b }'; }
# cores KEY: CPU cores in use by the path's daemons, averaged over its runs.
cores() {
	local n t=0
	for n in $(involved "${1%%-*}"); do t=$((t + cpu[$1,$n])); done
	awk -v t="$t" -v k="$clk_tck" -v ms="${wall[$1]}" 'BEGIN { if (ms == 0) print "-"; else printf "%.2f", t / k / (ms / 1000) }'
}
label() {
	case $1 in
	veth) echo "veth a->b (kernel)" ;;
	wg1) echo "wireguard-go 1 hop a->b" ;;
	pcd1) echo "pineconed 1 hop a->b" ;;
	pcd2) echo "pineconed 2 hops a->b->c" ;;
	alt1) echo "ALT 1 hop xa->xb" ;;
	alt2) echo "ALT 2 hops xa->xb->xc" ;;
	esac
}
declare -A med
for p in $all_paths; do
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
# Where the frames the runs lost were dropped: full link queues (the
# DROPS column of pineconectl peers, summed over the daemon's peerings)
# and a full TUN transmit ring (the kernel's TX dropped of pcd0).
echo
echo "drops over all runs: link queues (pineconectl peers) / TUN transmit ring (ip -s link):"
for n in a b c xa xb xc; do
	[[ -n ${dpid[$n]:-} ]] || continue
	bin=$work
	[[ $n == x? ]] && bin=$work/alt
	lq=$("$bin/pineconectl" --socket "$work/$n/admin.sock" peers 2>/dev/null | awk 'NR > 1 { s += $(NF - 1) } END { print s + 0 }')
	tq=$(ip -n "${dns[$n]}" -s link show dev pcd0 | awk '/TX:/ { getline; print $4; exit }')
	printf '  pineconed %-3s %8s / %s\n' "$n" "$lq" "$tq"
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
loss_pct() { awk '{ s += $1; r += $2 } END { if (s) printf "%.1f", 100 * (s - r) / s; else printf "-" }' "$1.loss"; }
minus() { awk -v a="$1" -v b="$2" 'BEGIN { if (a == "-" || b == "-") print "-"; else printf "%.3f", a - b }'; }

if [[ -n $alt ]]; then
	echo
	echo "ALT / base in the same rounds (throughput of the median; loaded RTT median):"
	printf '  %-8s %-6s %9s %9s %9s %9s
' "hops" "ratio" "1 stream" "no ping" "-P 4" "-P 8"
	for h in 1 2; do
		printf '  %-8s %-6s' "$h" "Mbit/s"
		for k in "" -np -P4 -P8; do printf ' %9s' "$(div "${med[alt$h$k]}" "${med[pcd$h$k]}")"; done
		printf '\n  %-8s %-6s' "$h" "RTT"
		for k in "" -np -P4 -P8; do printf ' %9s' "$(div "$(rtt_med "$work/load-alt$h$k")" "$(rtt_med "$work/load-pcd$h$k")")"; done
		printf '\n'
	done
fi

# summary ONE TWO DAEMONS…: the goal-by-goal lines of the 1-hop and 2-hop
# paths ONE and TWO, whose idle RSS is that of DAEMONS.
summary() {
	local one=$1 two=$2 n
	shift 2
	goal "1 hop / veth (1 stream)" "$(div "${med[$one]}" "${med[veth]}")" ">=" 0.4
	goal "2 hops / 1 hop (1 stream)" "$(div "${med[$two]}" "${med[$one]}")" ">=" 0.8
	goal "idle RTT 1 hop, ms" "$(rtt_med "$work/idle-$one")" "<=" 0.3
	goal "idle RTT, 2nd hop adds, ms" "$(minus "$(rtt_med "$work/idle-$two")" "$(rtt_med "$work/idle-$one")")" "<=" 0.1
	goal "loaded RTT 1 hop median, ms" "$(load_pct "$work/load-$one" 50)" "<=" 1
	goal "loaded RTT 1 hop p90, ms" "$(load_pct "$work/load-$one" 90)" "<=" 2
	goal "loaded ping loss 1 hop, %" "$(loss_pct "$work/load-$one")" "<=" 0
	goal "loaded RTT 2 hops median, ms" "$(load_pct "$work/load-$two" 50)" "<=" 2
	goal "1 hop stream with pings / without" "$(div "${med[$one]}" "${med[$one-np]}")" ">=" 0.9
	goal "1 hop -P 4 / 1 stream" "$(div "${med[$one-P4]}" "${med[$one]}")" ">=" 1
	goal "1 hop -P 8 / 1 stream" "$(div "${med[$one-P8]}" "${med[$one]}")" ">=" 1
	if [[ -n $wg_go ]]; then
		goal "Mbit/s per core, pineconed / wireguard-go" "$(div "$(div "${med[$one]}" "$(cores "$one")")" "$(div "${med[wg1]}" "$(cores wg1)")")" ">=" 1
	fi
	for n in "$@"; do
		goal "idle VmRSS pineconed $n, MiB" $((idle_rss[$n] / 1024)) "<=" 20
	done
}
echo
echo "summary against the issue 14 goals:"
summary pcd1 pcd2 a b c
if [[ -n $alt ]]; then
	echo
	echo "summary against the issue 14 goals, ALT binaries:"
	summary alt1 alt2 xa xb xc
fi
