#!/usr/bin/env bash
# Time and peak memory of `kpcap analyze` on each hostile input class, at
# the sizes of docs/performance.md, beside a plain 1 GiB mixed capture.
# Inputs are generated once into DIR (several GB; the .gz ones are
# small). One run each, 2 threads, table output; per GiB of decoded input
# and relative to the mixed capture's time per GiB. WITH_LIMIT=1 adds a run
# with --max-flows 100000 of each.
#
#   bench/hostile.sh [KPCAP] [DIR]     defaults: target/release/kpcap target/hostile
#   WITH_LIMIT=1 bench/hostile.sh
set -uo pipefail
cd "$(dirname "$0")/.."
kpcap=${1:-target/release/kpcap}
dir=${2:-target/hostile}
gen=${GEN:-target/release/kpcap}
[ -x "$gen" ] || cargo build --release -q
mkdir -p "$dir"

synth() { # scenario size file [compressor]
  local file=$dir/$3
  [ -f "$file" ] && return
  if [ -n "${4:-}" ]; then
    "$gen" synth --scenario "$1" --size "$2" -o - 2>/dev/null | $4 >"$file.part" && mv "$file.part" "$file"
  else
    "$gen" synth --scenario "$1" --size "$2" -o "$file" 2>/dev/null
  fi
}

synth mixed 1G mixed-1g.pcap
synth hostile-zeros 4G zeros-4g.pcap.gz "gzip -1"
synth hostile-garbage 2G garbage-2g.pcapng.gz "gzip -1"
synth hostile-dns-tcp-stream 1100M dns-tcp-stream.pcap.gz "gzip -1"
synth hostile-dns-tcp-stream 1100M dns-tcp-stream.pcap
synth hostile-dns-copies 4263M dns-copies.pcap.gz "gzip -1"
synth hostile-ifindex-churn 7600K ifindex-churn-7m.pcap
synth hostile-ifindex-churn 22800K ifindex-churn-23m.pcap
synth hostile-many-interfaces 15M many-interfaces.pcapng
for segments in 25 50 100 400; do
  synth hostile-dns-tcp-stream $((segments * 1518))K dns-tcp-${segments}k.pcap
done
synth hostile-late-dns 43500000 late-dns.pcap
synth hostile-hole 2G hole-2g.pcap
synth hostile-syn-flood 73400320 syn-flood.pcap

measure() { # args... -> "seconds KiB exit"
  local measured=$dir/.time
  /usr/bin/time -o "$measured" -f '%e %M %x' timeout 600 "$kpcap" analyze --threads 2 "$@" \
    >/dev/null 2>"$dir/.stderr"
  tail -1 "$measured"
}

reference=""
run() { # label, decoded bytes, args...
  local label=$1 bytes=$2
  shift 2
  local stdin_file=""
  if [ "$1" = "-" ]; then stdin_file=$dir/.stdin; fi
  read -r seconds kb status < <(
    if [ -n "$stdin_file" ]; then measure "$@" <"$stdin_file"; else measure "$@"; fi
  )
  local warning
  warning=$(grep -m1 -E 'error|warning' "$dir/.stderr" | cut -c1-60)
  local per_gb
  per_gb=$(awk -v s="$seconds" -v b="$bytes" 'BEGIN { printf "%.2f", s / (b / 2^30) }')
  [ -z "$reference" ] && reference=$per_gb
  local ratio
  ratio=$(awk -v p="$per_gb" -v r="$reference" 'BEGIN { printf "%.1f", p / r }')
  local limited=""
  if [ -n "${WITH_LIMIT:-}" ] && [[ " $* " == *" --max-flows "* ]]; then
    limited=" (limit given) |"
  elif [ -n "${WITH_LIMIT:-}" ]; then
    read -r l_seconds l_kb l_status < <(
      if [ -n "$stdin_file" ]; then measure --max-flows 100000 "$@" <"$stdin_file"
      else measure --max-flows 100000 "$@"; fi
    )
    limited=" $l_seconds s, $((l_kb / 1024)) MiB |"
  fi
  printf '| %s | %s | %s s | %s | %sx | %s MiB | %s |%s %s |\n' "$label" \
    "$(awk -v b="$bytes" 'BEGIN { printf "%.2f GB", b / 1e9 }')" "$seconds" "$per_gb" "$ratio" \
    "$((kb / 1024))" "$status" "$limited" "$warning"
}

# Streamed from a file on stdin (not a pipe from the generator, which
# would compete for the cores).
[ -f "$dir/.stdin" ] || "$gen" synth --scenario hostile-zeros --size 1G -o "$dir/.stdin" 2>/dev/null

header="| input | decoded | time | s per GiB | vs mixed | peak RSS | exit |"
rule="|---|---|---|---|---|---|---|"
if [ -n "${WITH_LIMIT:-}" ]; then
  header+=" --max-flows 100000 |"
  rule+="---|"
fi
echo "$header first warning or error |"
echo "$rule---|"
size() { stat -L -c %s "$1"; }
measure "$dir/mixed-1g.pcap" >/dev/null # warm the page cache
run "plain mixed capture, 1 GiB" "$(size "$dir/mixed-1g.pcap")" "$dir/mixed-1g.pcap"
run "gzip: pcap header, 4 GiB of zeros" $((4 * 2 ** 30 + 24)) "$dir/zeros-4g.pcap.gz"
run "gzip: pcapng, 2 GiB of garbage" $((2 * 2 ** 30 + 72)) "$dir/garbage-2g.pcapng.gz"
run "pcap header, 1 GiB of zeros, stdin" "$(size "$dir/.stdin")" -
run "TCP stream to port 53, gzip, --max-flows 1000" "$(size "$dir/dns-tcp-stream.pcap")" \
  --max-flows 1000 "$dir/dns-tcp-stream.pcap.gz"
run "TCP stream to port 53, mapped, --max-flows 1000" "$(size "$dir/dns-tcp-stream.pcap")" \
  --max-flows 1000 "$dir/dns-tcp-stream.pcap"
run "49 M copies of one query, gzip, --max-flows 1000" $((4263 * 2 ** 20)) \
  --max-flows 1000 "$dir/dns-copies.pcap.gz"
run "SLL2, new ifindex per packet, 7.6 MB" "$(size "$dir/ifindex-churn-7m.pcap")" "$dir/ifindex-churn-7m.pcap"
run "SLL2, new ifindex per packet, 22.8 MB" "$(size "$dir/ifindex-churn-23m.pcap")" "$dir/ifindex-churn-23m.pcap"
run "pcapng, 100 000 interfaces, one flow (table)" "$(size "$dir/many-interfaces.pcapng")" \
  "$dir/many-interfaces.pcapng"
run "pcapng, 100 000 interfaces, one flow (JSON)" "$(size "$dir/many-interfaces.pcapng")" \
  --format json "$dir/many-interfaces.pcapng"
for segments in 25 50 100 400; do
  run "TCP DNS, ${segments}k segments of one stream" "$(size "$dir/dns-tcp-${segments}k.pcap")" \
    "$dir/dns-tcp-${segments}k.pcap"
done
run "250 000 queries + 250 000 late responses, one key" "$(size "$dir/late-dns.pcap")" "$dir/late-dns.pcap"
run "pcap header, 2 GiB sparse hole" "$(size "$dir/hole-2g.pcap")" "$dir/hole-2g.pcap"
run "SYN flood, 2^20 sources" "$(size "$dir/syn-flood.pcap")" "$dir/syn-flood.pcap"
