#!/usr/bin/env bash
# Whole-process timings on one generated capture, in one run, on the same
# file in the same page-cache state: the floor (map the file, read every
# byte once), the flow floor (examples/flow_floor.rs: kpcap's record walk
# and a bare 5-tuple count, the least any flow count does; classic pcap
# only), `kpcap analyze` (table and JSON, all threads and one),
# `tcpdump -r F -w /dev/null` (libpcap's bare record walk) and, with
# TSHARK=1, tshark's two-pass DNS filter. The commands alternate, round by
# round, and each figure is the median of its rounds: wall time, MB/s,
# packets/s, ratios to tcpdump and to the floor, CPU time (user + system)
# and CPU per packet. The capture line gives its locality: distinct flows
# per 10 000 consecutive packets.
#
#   bench/compare.sh [SIZE] [SCENARIO]     defaults: 1G busy (or mixed, small)
#   RUNS=5 THREADS=2 bench/compare.sh 256M small
#   CONVERSATIONS=2000 bench/compare.sh 128M small   (synth --conversations)
#   FOLIOS=1 bench/compare.sh    also after re-reading the file as large folios
#   VIEW=any-sll2 bench/compare.sh 1G busy    the busy node with `tcpdump -i
#                                any` (synth --view; no flow floor: it
#                                reads Ethernet frames only)
#   FRESH=1 bench/compare.sh     write the capture anew first: its pages as
#                                after writing (a FOLIOS=1 run leaves them as
#                                large folios, and reading once does not undo it)
set -euo pipefail
size=${1:-1G}
scenario=${2:-busy}
runs=${RUNS:-5}
threads=${THREADS:-$(nproc)}
cd "$(dirname "$0")/.."

missing=()
for tool in tcpdump $([ "${TSHARK:-0}" = 1 ] && echo tshark); do
  command -v "$tool" >/dev/null || missing+=("$tool")
done
if ((${#missing[@]})); then
  echo "installing ${missing[*]} from Debian packages" >&2
  sudo_cmd=""
  [ "$(id -u)" -ne 0 ] && sudo_cmd="sudo"
  $sudo_cmd apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq "${missing[@]}" >&2
fi

cargo build --release -q --bin kpcap --example flow_floor
kpcap=target/release/kpcap
mkdir -p target/bench-data
conversations=${CONVERSATIONS:-}
view=${VIEW:-}
file=target/bench-data/compare-$scenario${view:+-$view}-$size${conversations:+-c$conversations}.pcap
[ "${FRESH:-0}" = 1 ] && rm -f "$file"
[ -f "$file" ] || "$kpcap" synth --scenario "$scenario" --size "$size" \
  ${conversations:+--conversations "$conversations"} ${view:+--view "$view"} -o "$file" >&2
bytes=$(stat -L -c %s "$file")
locality=$("$kpcap" locality "$file")
packets=$(echo "$locality" | awk '{ print $1 }')

commands=(floor flow_floor kpcap kpcap_json kpcap1 tcpdump)
case $view in any*) commands=(floor kpcap kpcap_json kpcap1 tcpdump) ;; esac
[ "${TSHARK:-0}" = 1 ] && commands+=(tshark)
run() {
  case $1 in
    floor) "$kpcap" floor --threads "$threads" "$file" ;;
    flow_floor) target/release/examples/flow_floor "$file" "$threads" ;;
    kpcap) "$kpcap" analyze --threads "$threads" --fail-on never "$file" ;;
    kpcap_json) "$kpcap" analyze --threads "$threads" --fail-on never --format json "$file" ;;
    kpcap1) "$kpcap" analyze --threads 1 --fail-on never "$file" ;;
    tcpdump) tcpdump -nr "$file" -w /dev/null ;;
    tshark) tshark -n -2 -r "$file" -Y 'dns.flags.response == 0 && !dns.response_in' ;;
  esac
}
label() {
  case $1 in
    floor) echo "floor ($threads threads)" ;;
    flow_floor) echo "flow floor ($threads threads)" ;;
    kpcap) echo "kpcap analyze ($threads threads)" ;;
    kpcap_json) echo "kpcap analyze --format json" ;;
    kpcap1) echo "kpcap analyze (1 thread)" ;;
    tcpdump) echo "tcpdump -r F -w /dev/null" ;;
    tshark) echo "tshark -2 (dns without response)" ;;
  esac
}
median() { sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

# One round runs every command once, in turn; wall and CPU (user + system)
# seconds of each run are kept.
measure() {
  local state=$1
  declare -A walls cpus
  for _ in $(seq "$runs"); do
    for name in "${commands[@]}"; do
      local times
      times=$( { TIMEFORMAT='%R %U %S'; time run "$name" >/dev/null 2>&1; } 2>&1 )
      walls[$name]+="$(echo "$times" | awk '{ print $1 }') "
      cpus[$name]+="$(echo "$times" | awk '{ printf "%.3f", $2 + $3 }') "
    done
  done
  echo "page cache: $state; medians of $runs alternating rounds"
  printf '%-34s %9s %9s %11s %10s %9s %8s %11s\n' command seconds MB/s Mpackets/s vs-tcpdump vs-floor cpu-s "cpu ns/pkt"
  local tcpdump floor
  tcpdump=$(echo "${walls[tcpdump]}" | tr ' ' '\n' | grep . | median)
  floor=$(echo "${walls[floor]}" | tr ' ' '\n' | grep . | median)
  for name in "${commands[@]}"; do
    local wall cpu
    wall=$(echo "${walls[$name]}" | tr ' ' '\n' | grep . | median)
    cpu=$(echo "${cpus[$name]}" | tr ' ' '\n' | grep . | median)
    awk -v label="$(label "$name")" -v s="$wall" -v cpu="$cpu" -v bytes="$bytes" \
      -v packets="$packets" -v t="$tcpdump" -v f="$floor" 'BEGIN {
        printf "%-34s %9.3f %9.0f %11.2f %9.2fx %8.2fx %8.3f %11.0f\n", label, s, bytes / s / 1e6,
          packets / s / 1e6, s / t, s / f, cpu, cpu / packets * 1e9 }'
  done
}

echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(uname -sr)"
echo "capture: $file ($scenario, $bytes bytes): $locality"
cat "$file" >/dev/null
measure "the file read once"
if [ "${FOLIOS:-0}" = 1 ]; then
  dd if="$file" iflag=nocache count=0 status=none
  cat "$file" >/dev/null
  echo
  measure "dropped and read back whole (large folios)"
fi
