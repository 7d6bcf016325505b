#!/usr/bin/env bash
# Writes every report kpcap makes (analyze, flows, scan, merge, diff; table,
# JSON, NDJSON) of testdata/ and of generated mixed, small and busy captures into
# OUT_DIR, one file per command with its exit code and stderr beside it.
# Two binaries' report folders are compared with `diff -r`:
#
#   bench/reports.sh target/release/kpcap /tmp/after
#   bench/reports.sh /tmp/kpcap-before /tmp/before
#   diff -r /tmp/before /tmp/after && echo byte-identical
#
# The generated captures are written once into $KPCAP_REPORTS_CACHE (default
# /tmp/kpcap-reports-captures) by the first binary given, so both runs read
# the same bytes (busy-any.pcap needs a binary whose busy scenario takes
# `--view`: run the newer binary first, or keep the cache).
set -uo pipefail
kpcap=$(realpath "$1")
out=$2
root=$(cd "$(dirname "$0")/.." && pwd)
cache=${KPCAP_REPORTS_CACHE:-/tmp/kpcap-reports-captures}
mkdir -p "$out" "$cache"
cd "$root"

[ -f "$cache/mixed.pcap" ] || "$kpcap" synth --scenario mixed --size 64M -o "$cache/mixed.pcap"
[ -f "$cache/small.pcap" ] || "$kpcap" synth --scenario small --size 32M -o "$cache/small.pcap"
[ -f "$cache/busy.pcap" ] || "$kpcap" synth --scenario busy --size 64M -o "$cache/busy.pcap"
[ -f "$cache/busy-any.pcap" ] ||
  "$kpcap" synth --scenario busy --view any-sll2 --size 32M -o "$cache/busy-any.pcap"

# run NAME ARGS...: stdout to NAME.out, stderr to NAME.err, exit code to NAME.rc
run() {
  local name=$1
  shift
  "$kpcap" "$@" >"$out/$name.out" 2>"$out/$name.err" </dev/null
  echo $? >"$out/$name.rc"
  # scan reads files in parallel: its warnings, and its NDJSON file lines,
  # come in completion order
  sort -o "$out/$name.err" "$out/$name.err"
  case $name in scan.*.ndjson) sort -o "$out/$name.out" "$out/$name.out" ;; esac
}

captures=(testdata/*.pcap testdata/*.pcapng testdata/*.gz testdata/incident-nodes/*.pcap
  "$cache/mixed.pcap" "$cache/small.pcap" "$cache/busy.pcap" "$cache/busy-any.pcap")
for f in "${captures[@]}"; do
  n=$(basename "$f")
  for fmt in table json ndjson; do
    run "analyze.$n.$fmt" analyze --format "$fmt" "$f"
    run "flows.$n.$fmt" flows --format "$fmt" "$f"
  done
  run "analyze.$n.limit0" analyze --limit 0 "$f"
  run "flows5.$n.table" flows --by 5tuple "$f"
done

# Several files at once, rotated parts, interface filters.
several=(testdata/incident-before.pcapng testdata/incident-after.pcapng testdata/zeek_vxlan.pcap)
for fmt in table json ndjson; do
  run "analyze.several.$fmt" analyze --format "$fmt" "${several[@]}"
  run "analyze.merge.$fmt" analyze --merge --format "$fmt" "${several[@]}"
  run "flows.several.$fmt" flows --format "$fmt" "${several[@]}"
  run "scan.testdata.$fmt" scan -q --format "$fmt" testdata
  run "diff.incident.$fmt" diff --format "$fmt" testdata/incident-before.pcapng testdata/incident-after.pcapng
  run "diff.reverse.$fmt" diff --format "$fmt" testdata/incident-after.pcapng testdata/incident-before.pcapng
done
run analyze.two-nics.ens19 analyze --interface ens19 testdata/incident-before-two-nics.pcapng
for fmt in table json ndjson; do
  run "analyze.nodes.$fmt" analyze --format "$fmt" --cluster testdata/incident-nodes/cluster testdata/incident-nodes/*.pcap
  run "scan.nodes.$fmt" scan -q --format "$fmt" --cluster testdata/incident-nodes/cluster testdata/incident-nodes
done
run analyze.node-cidr analyze --node-cidr 10.50.10.0/24 testdata/incident-before.pcapng

# Shards of a scan, and their merge.
for i in 1 2 3; do
  run "scan.shard$i" scan -q --shard "$i/3" --format json testdata
done
for fmt in table json ndjson; do
  run "merge.$fmt" merge --format "$fmt" "$out/scan.shard1.out" "$out/scan.shard2.out" "$out/scan.shard3.out"
done
