#!/usr/bin/env python3
"""Group a pineconed CPU profile's samples by data-path stage (issue 14).

    python3 bench/stages.py PROFILE.cpu.pb.gz [...]

Reads `go tool pprof -traces` and gives each sample to the first stage
whose pattern matches a frame of its stack, leaf first, in the order of
STAGES below (so the crypto inside a send counts as seal, not as the
send). Prints each stage's share of the samples, and the callers of
runtime.memmove (the copies) with their shares. Shares, not times: the
machine these run on is shared, so only proportions compare.
"""
import re
import subprocess
import sys

# (stage, regex on a frame), first match wins; checked per frame from the
# leaf up, each stage over the whole stack before the next stage.
STAGES = [
    ("seal (ChaCha20-Poly1305)", r"chacha20Poly1305Seal|\(\*keypair\)\.seal"),
    ("open (ChaCha20-Poly1305)", r"chacha20Poly1305Open|\(\*keypair\)\.open"),
    ("GC", r"runtime\.gcBgMarkWorker|runtime\.gcAssistAlloc|runtime\.bgsweep|runtime\.bgscavenge|runtime\.gcStart"),
    ("TUN read (syscall, GSO split, filter)", r"pineconed/tun\.\(\*Reader\)\.Read"),
    ("TUN write: queueing a packet (a copy on main)", r"pineconed/tun\.\(\*Writer\)\.(Write|WriteBuffer|enqueue)$"),
    ("TUN write (flush, GRO, syscall)", r"pineconed/tun\.\(\*Writer\)\.(flush|loop)"),
    ("link write (bufio, syscall)", r"link\.\(\*Conn\)\.writeLoop|link\.deadlineWriter"),
    ("session send (locks, state)", r"session\.\(\*Manager\)\.Send"),
    ("session receive (index, replay, checks)", r"session\.\(\*Manager\)\.(HandlePayload|OpenTransport)"),
    ("resolve", r"lookup\.\(\*Resolver\)\.Resolve"),
    ("node send (frame header, link queue)", r"overlay\.\(\*Node\)\.SendBuffer"),
    ("datapath (inbound/outbound loops)", r"pineconed/datapath\."),
    ("node: deliver (on main: a copy into the delivery queue)", r"overlay\.\(\*Node\)\.deliver$"),
    ("node: receive/forward a frame", r"overlay\.\(\*Node\)\.Receive"),
    ("link read (bufio, syscall, deadlines)", r"link\.\(\*Conn\)\.readLoop"),
    ("scheduler, timers, netpoll", r"runtime\.(schedule|findRunnable|park_m|mcall|futex|notesleep|notewakeup|wakep|netpoll|stopm|startm|usleep|checkTimers|goready|ready|sysmon)"),
]

SEP = "-----------+"


def parse(path):
    out = subprocess.run(["go", "tool", "pprof", "-traces", path], capture_output=True, text=True, check=True).stdout
    samples = []
    for block in out.split(SEP)[1:]:
        lines = [l for l in block.splitlines()[1:] if l.strip()]
        if not lines:
            continue
        m = re.match(r"\s*([\d.]+)(ms|s|us|µs)\s+(.*)", lines[0])
        if not m:
            continue
        v = float(m.group(1)) * {"s": 1000, "ms": 1, "us": 0.001, "µs": 0.001}[m.group(2)]
        frames = [m.group(3).strip()] + [l.strip() for l in lines[1:]]
        samples.append((v, frames))
    return samples


def stage(frames):
    for name, rx in STAGES:
        r = re.compile(rx)
        if any(r.search(f) for f in frames):
            return name
    return "other (runtime, admin, router ticks)"


def main():
    for path in sys.argv[1:]:
        samples = parse(path)
        total = sum(v for v, _ in samples) or 1
        by = {}
        copies = {}
        for v, frames in samples:
            s = stage(frames)
            by[s] = by.get(s, 0) + v
            if frames[0] == "runtime.memmove":
                caller = next((f for f in frames[1:] if not f.startswith("runtime.")), "?")
                copies[caller] = copies.get(caller, 0) + v
        print(f"== {path}: {total / 1000:.2f} s of samples")
        for s, v in sorted(by.items(), key=lambda kv: -kv[1]):
            print(f"  {100 * v / total:5.1f}%  {s}")
        if copies:
            print("  memmove by caller:")
            for c, v in sorted(copies.items(), key=lambda kv: -kv[1]):
                print(f"    {100 * v / total:5.1f}%  {c}")


if __name__ == "__main__":
    main()
