#!/bin/sh
# Seeds a target's corpus from testdata/ and fuzzes it:
#   fuzz/run.sh TARGET [SECONDS]     (needs the nightly toolchain and cargo-fuzz)
# Crashes land in fuzz/artifacts/TARGET/; add each to a regression test.
set -eu
cd "$(dirname "$0")"
target=$1
seconds=${2:-600}
corpus=corpus/$target
mkdir -p "$corpus"
case $target in
  read_pcap) seeds=$(ls ../testdata/*.pcap) ;;
  read_pcapng) seeds=$(ls ../testdata/*.pcapng) ;;
  cluster) seeds=$(ls ../testdata/incident-cluster/*) ;;
  *) seeds=$(ls ../testdata/*.pcap ../testdata/*.pcapng) ;;
esac
for f in $seeds; do
  # libFuzzer's default -max_len is 4096: seed with each capture's start.
  head -c 65536 "$f" > "$corpus/seed-$(basename "$f")"
done
exec cargo +nightly fuzz run "$target" "$corpus" -- \
  -max_total_time="$seconds" -max_len=65536 -rss_limit_mb=2048 -timeout=10 -print_final_stats=1
