#!/usr/bin/env bash
# Whole-process timings on one generated capture, in one run, on the same
# file: the floor (map the file, read every byte once), `kpcap analyze`,
# `tcpdump -r F -w /dev/null` (libpcap's bare record walk) and tshark's
# two-pass DNS filter. Prints wall time (best of RUNS), MB/s, packets/s and
# each one's time relative to kpcap's, and its best CPU time (user +
# system).
#
#   bench/compare.sh [SIZE] [SCENARIO]     defaults: 1G mixed (or small)
#   RUNS=5 TSHARK_RUNS=1 THREADS=2 bench/compare.sh 256M small
#   CONVERSATIONS=2000 bench/compare.sh 128M small   (synth --conversations)
set -euo pipefail
size=${1:-1G}
scenario=${2:-mixed}
runs=${RUNS:-3}
tshark_runs=${TSHARK_RUNS:-1}
threads=${THREADS:-$(nproc)}
cd "$(dirname "$0")/.."

missing=()
for tool in tcpdump tshark; do
  command -v "$tool" >/dev/null || missing+=("$tool")
done
if ((${#missing[@]})); then
  echo "installing ${missing[*]} from Debian packages" >&2
  sudo_cmd=""
  [ "$(id -u)" -ne 0 ] && sudo_cmd="sudo"
  $sudo_cmd apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq "${missing[@]}" >&2
fi

cargo build --release -q
kpcap=target/release/kpcap
mkdir -p target/bench-data
conversations=${CONVERSATIONS:-}
file=target/bench-data/compare-$scenario-$size${conversations:+-c$conversations}.pcap
[ -f "$file" ] || "$kpcap" synth --scenario "$scenario" --size "$size" \
  ${conversations:+--conversations "$conversations"} -o "$file" >&2
bytes=$(stat -L -c %s "$file")
packets=$("$kpcap" flows --format ndjson "$file" | grep -o '"packets":[0-9]*' | sed -n 1p | cut -d: -f2)

# best wall time and best CPU time (user + system) of N runs, in seconds.
# CPU time is the steadier of the two on a shared machine: it does not
# count the time other tenants hold the cores. Before every run the file
# is dropped from the page cache and read into it again, so every command
# starts from the same cache: a run that reads part of the file from disk
# measures the disk, and the kernel may reclaim cold cache pages (DAMON
# does on the machine of the README's numbers). How the cached pages came
# in matters as much: read back whole they are large folios, which map a
# few faults per megabyte, and the floor takes 0.02 s on 1 GB; after a
# partial reclaim and re-read it took 0.10 s, kpcap 0.31 s instead of 0.25.
best() {
  local n=$1; shift
  local best="" best_cpu=""
  for _ in $(seq "$n"); do
    local times wall cpu
    dd if="$file" iflag=nocache count=0 status=none
    cat "$file" >/dev/null
    times=$( { TIMEFORMAT='%R %U %S'; time "$@" >/dev/null 2>&1; } 2>&1 )
    wall=$(echo "$times" | awk '{ print $1 }')
    cpu=$(echo "$times" | awk '{ printf "%.3f", $2 + $3 }')
    if [ -z "$best" ] || awk -v t="$wall" -v b="$best" 'BEGIN { exit !(t < b) }'; then best=$wall; fi
    if [ -z "$best_cpu" ] || awk -v t="$cpu" -v b="$best_cpu" 'BEGIN { exit !(t < b) }'; then best_cpu=$cpu; fi
  done
  echo "$best $best_cpu"
}

declare -A seconds
seconds[floor]=$(best "$runs" "$kpcap" floor --threads "$threads" "$file")
seconds[kpcap]=$(best "$runs" "$kpcap" analyze --threads "$threads" --fail-on never "$file")
seconds[kpcap1]=$(best "$runs" "$kpcap" analyze --threads 1 --fail-on never "$file")
seconds[tcpdump]=$(best "$runs" tcpdump -nr "$file" -w /dev/null)
seconds[tshark]=$(best "$tshark_runs" tshark -n -2 -r "$file" -Y 'dns.flags.response == 0 && !dns.response_in')

echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(uname -sr)"
echo "capture: $file ($scenario, $bytes bytes, $packets packets); best of $runs runs (tshark: $tshark_runs)"
printf '%-34s %10s %10s %12s %10s %10s\n' command seconds MB/s Mpackets/s vs-kpcap cpu-s
for name in floor kpcap kpcap1 tcpdump tshark; do
  case $name in
    floor) label="floor ($threads threads)" ;;
    kpcap) label="kpcap analyze ($threads threads)" ;;
    kpcap1) label="kpcap analyze (1 thread)" ;;
    tcpdump) label="tcpdump -r F -w /dev/null" ;;
    tshark) label="tshark -2 (dns without response)" ;;
  esac
  read -r wall cpu <<<"${seconds[$name]}"
  read -r kpcap_wall _ <<<"${seconds[kpcap]}"
  awk -v label="$label" -v s="$wall" -v cpu="$cpu" -v bytes="$bytes" -v packets="$packets" \
    -v k="$kpcap_wall" 'BEGIN {
      printf "%-34s %10.3f %10.0f %12.2f %9.2fx %10.3f\n", label, s, bytes / s / 1e6, packets / s / 1e6, s / k, cpu }'
done
