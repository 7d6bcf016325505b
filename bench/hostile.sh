#!/usr/bin/env bash
# Time and peak memory of `kpcap analyze` on each hostile input class, at
# the sizes of docs/performance.md, beside a plain 1 GiB mixed capture.
# Inputs are generated once into DIR (several GB; the .gz and .zst ones
# are small). One run each, 2 threads, table output.
#
#   bench/hostile.sh [KPCAP] [DIR]     defaults: target/release/kpcap target/hostile
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

run() { # label, args...
  local label=$1
  shift
  local measured=$dir/.time
  /usr/bin/time -o "$measured" -f '%e %M %x' timeout 600 "$kpcap" analyze --threads 2 "$@" >/dev/null 2>"$dir/.stderr"
  read -r seconds kb status < <(tail -1 "$measured")
  printf '| %s | %s s | %s MiB | %s | %s |\n' "$label" "$seconds" "$((kb / 1024))" "$status" \
    "$(grep -m1 -E 'error|warning' "$dir/.stderr" | cut -c1-80)"
}

echo "| input | time | peak RSS | exit | first warning or error |"
echo "|---|---|---|---|---|"
run "plain mixed capture, 1 GiB" "$dir/mixed-1g.pcap"
run "gzip: pcap header, 4 GiB of zeros" "$dir/zeros-4g.pcap.gz"
run "gzip: pcapng, 2 GiB of garbage" "$dir/garbage-2g.pcapng.gz"
run "pcap header, 1 GiB of zeros, stdin" - < <("$gen" synth --scenario hostile-zeros --size 1G -o - 2>/dev/null)
run "TCP stream to port 53, gzip, --max-flows 1000" --max-flows 1000 "$dir/dns-tcp-stream.pcap.gz"
run "TCP stream to port 53, mapped, --max-flows 1000" --max-flows 1000 "$dir/dns-tcp-stream.pcap"
run "49 M copies of one query, gzip, --max-flows 1000" --max-flows 1000 "$dir/dns-copies.pcap.gz"
run "SLL2, new ifindex per packet, 7.6 MB" "$dir/ifindex-churn-7m.pcap"
run "SLL2, new ifindex per packet, 22.8 MB" "$dir/ifindex-churn-23m.pcap"
run "pcapng, 100 000 interfaces, one flow (table)" "$dir/many-interfaces.pcapng"
run "pcapng, 100 000 interfaces, one flow (JSON)" --format json "$dir/many-interfaces.pcapng"
for segments in 25 50 100 400; do
  run "TCP DNS, ${segments}k segments of one stream" "$dir/dns-tcp-${segments}k.pcap"
done
run "250 000 queries + 250 000 late responses, one key" "$dir/late-dns.pcap"
run "pcap header, 2 GiB sparse hole" "$dir/hole-2g.pcap"
run "SYN flood, 2^20 sources, no limit" "$dir/syn-flood.pcap"
run "SYN flood, 2^20 sources, --max-flows 100000" --max-flows 100000 "$dir/syn-flood.pcap"
