#!/usr/bin/env bash
# What kpcap's workers wait for: a scheduler trace of whole runs
# (`perf record -a -g -e sched:sched_switch`), each time a kpcap thread
# goes to sleep measured until it runs again and put down to where it went
# to sleep (the kernel's and the first user frames of its stack):
#
#   rayon       rayon's sleep: the worker had no work to take
#   arena lock  glibc's malloc arena lock (__lll_lock_wait_private)
#   mmap lock   the address space's lock (mmap/munmap/mprotect vs faults)
#   disk        a page of the file not in the page cache (io_schedule)
#   preempted   another task took the CPU
#   other       anything else
#
# Only the pool's workers count: the main thread sleeps through the run,
# waiting for the pool.
# and the CPUs' idle time over the run. Needs perf (Debian: linux-perf)
# and the right to trace the scheduler (root, or kernel.perf_event_paranoid
# at most -1).
#
#   bench/waits.sh [FILE] [THREADS]   defaults: the busy 1 GiB capture of
#                                     bench/compare.sh, all threads
#   RUNS=5 bench/waits.sh
#   KPCAP=/tmp/other-kpcap bench/waits.sh    another build, same file
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/common.sh
require perf linux-perf
file=${1:-target/bench-data/compare-busy-1G.pcap}
threads=${2:-$(nproc)}
runs=${RUNS:-3}
kpcap_under_test
busy_capture "$file" 1G
trace=$(mktemp -d)
trap 'rm -rf "$trace"' EXIT
cat "$file" >/dev/null
echo "kpcap analyze --threads $threads $file; $runs traced runs"
for run in $(seq "$runs"); do
  perf record -q -a -g -e sched:sched_switch -o "$trace/data" -- \
    "$KPCAP" analyze --threads "$threads" --fail-on never "$file" >/dev/null 2>&1
  perf script -i "$trace/data" 2>/dev/null | python3 -c '
import collections, re, sys

causes = [
    ("rayon", "Sleep::sleep"),
    ("arena lock", "__lll_lock_wait_private"),
    ("mmap lock", "rwsem_down_"),
    ("disk", "io_schedule"),
]
switch = re.compile(r"\[(\d+)\]\s+([\d.]+): sched:sched_switch: prev_comm=(.+?) "
                    r"prev_pid=(\d+) .*prev_state=(\S+) ==> next_comm=(.+?) next_pid=(\d+)")
events = []
for block in sys.stdin.read().split("\n\n"):
    match = switch.search(block)
    if match:
        cpu, t, prev, prev_pid, state, nxt, next_pid = match.groups()
        events.append((float(t), cpu, prev, prev_pid, state, nxt, next_pid, block))
ours = [e for e in events if "kpcap" in e[2] or "kpcap" in e[5]]
if not ours:
    sys.exit("no kpcap thread in the trace")
start, end = ours[0][0], ours[-1][0]
# The main thread has the process'"'"'s id, the lowest of its threads'"'"'.
main = min((e[3] for e in ours if "kpcap" in e[2]), key=int)
cpus = len({e[1] for e in events})
running, asleep = {}, {}
idle = 0.0
waits = collections.defaultdict(lambda: [0, 0.0])
for t, cpu, prev, prev_pid, state, nxt, next_pid, block in events:
    if start <= t <= end and cpu in running:
        name, since = running[cpu]
        if name.startswith("swapper"):
            idle += t - since
    running[cpu] = (nxt, t)
    if next_pid in asleep:
        cause, since = asleep.pop(next_pid)
        waits[cause][0] += 1
        waits[cause][1] += t - since
    if "kpcap" in prev and prev_pid != main:
        cause = next((c for c, frame in causes if frame in block), None)
        if cause is None:
            cause = "preempted" if state.startswith("R") else "other"
        asleep[prev_pid] = (cause, t)
span = end - start
print(f"run: {1000 * span:.0f} ms, CPUs idle {1000 * idle:.0f} ms "
      f"({100 * idle / (cpus * span):.1f}% of {cpus} CPUs)")
for cause in [c for c, _ in causes] + ["preempted", "other"]:
    count, seconds = waits.get(cause, (0, 0.0))
    print(f"  {cause:12s} {count:6d} sleeps {1000 * seconds:8.1f} ms")
'
done
