#!/usr/bin/env bash
# The HTML report of a busy node's capture: its size, and how long
# Chromium (headless, Debian's package) takes to open it and lay it out,
# the browser's start included (median of RUNS).
#
#   bench/html.sh [SIZE]        default 1G; the capture is generated once
set -euo pipefail
size=${1:-1G}
runs=${RUNS:-5}
cd "$(dirname "$0")/.."
command -v chromium >/dev/null || {
  echo "installing chromium from Debian packages" >&2
  apt-get update -qq >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >&2
}
cargo build --release -q
kpcap=target/release/kpcap
mkdir -p target/bench-data
file=target/bench-data/compare-busy-$size.pcap
[ -f "$file" ] || "$kpcap" synth --scenario busy --size "$size" -o "$file" >&2
page=target/bench-data/busy-$size.html
start=$(date +%s.%N)
"$kpcap" analyze --fail-on never --format html --output "$page" "$file"
made=$(echo "$(date +%s.%N) - $start" | bc)
bytes=$(stat -c %s "$page")
profile=$(mktemp -d)
times=()
for _ in $(seq "$runs"); do
  t0=$(date +%s.%N)
  chromium --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
    --disable-background-networking --disable-component-update --disable-sync \
    --user-data-dir="$profile" --dump-dom "file://$PWD/$page" >/dev/null 2>&1
  times+=("$(echo "$(date +%s.%N) - $t0" | bc)")
done
rm -rf "$profile"
median=$(printf '%s\n' "${times[@]}" | sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }')
echo "capture: $file ($(stat -c %s "$file") bytes): $("$kpcap" locality "$file")"
printf 'page: %s, %d bytes (%.2f MB), made in %.2f s\n' "$page" "$bytes" "$(echo "$bytes / 1000000" | bc -l)" "$made"
printf 'chromium --headless --dump-dom: median %.2f s of %d runs (%s)\n' "$median" "$runs" "${times[*]}"
