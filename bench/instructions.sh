#!/usr/bin/env bash
# Instructions per packet, by phase, of one `kpcap analyze` run (one
# thread unless THREADS says), counted by valgrind's callgrind. Unlike
# wall or CPU time, the count is the same from run to run whatever else
# the machine does (within about 0.3%: the pool's start-up varies), so a
# change of a few percent shows on a shared machine whose timings move by
# 15%. It counts work, not time: a change that only moves cache misses
# does not show here.
#
#   bench/instructions.sh [FILE]   default: a busy 64 MiB capture
#                                  (synth --scenario busy), generated once
#   VIEW=any-sll2 bench/instructions.sh    the busy capture with `-i any`
#   KPCAP=/tmp/other-kpcap bench/instructions.sh    another build
#   THREADS=2 bench/instructions.sh    the pool's size (callgrind runs the
#                                      threads one at a time; the size sets
#                                      how the windows are cut into runs)
#
# Phases (callgrind's inclusive counts; inlined code counts in its caller):
#   reading      the record walk: decoding, totals, queuing flow events,
#                the DNS log
#     decoding   Decoder::decode_into
#     queuing    FlowTable::observe (the totals and Batch::push)
#     DNS        DnsLog::observe
#   applying     FlowTable::apply_pending: events into flows and pairs
#   detectors    Analyzer::outcome: the detectors, coverage, verdict
#   rest         start-up, planning, settling the DNS log, the report
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/common.sh
require valgrind valgrind
file=${1:-target/bench-data/instructions-busy${VIEW:+-$VIEW}-64M.pcap}
kpcap_under_test
busy_capture "$file" 64M
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
valgrind --tool=callgrind --callgrind-out-file="$work/out" \
  "$KPCAP" analyze --threads "${THREADS:-1}" --fail-on never "$file" >"$work/report" 2>"$work/log"
packets=$(awk '/^packets/ { gsub(",", "", $2); print $2; exit }' "$work/report")
# From another directory: run inside the repository, callgrind_annotate
# shortens the source paths and its inclusive counts come out lower.
(cd "$work" && callgrind_annotate --inclusive=yes out 2>/dev/null >annotated)
# The inclusive count of the function whose symbol ends the line.
count() {
  awk -v name="$1" '
    index($0, name " [") && $2 ~ /^\(/ && $3 != "<" { gsub(",", "", $1); print $1; exit }
  ' "$work/annotated"
}
total=$(awk '/PROGRAM TOTALS/ { gsub(",", "", $1); print $1; exit }' "$work/annotated")
reading=$(count 'kpcap::capture::pcap::walk')
decoding=$(count 'kpcap::decode::Decoder::decode_into')
queuing=$(count 'kpcap::flow::table::FlowTable::observe')
dns=$(count 'kpcap::detect::dns::log::DnsLog::observe')
applying=$(count 'kpcap::flow::table::FlowTable::apply_pending')
detectors=$(count 'kpcap::analysis::Analyzer::outcome')
echo "$file: $packets packets, $total instructions"
row() { printf '  %-12s %6d per packet  %5.1f%%\n' "$1" $(($2 / packets)) "$(echo "scale=3; 100 * $2 / $total" | bc)"; }
row all "$total"
row reading "${reading:-0}"
row "  decoding" "${decoding:-0}"
row "  queuing" "${queuing:-0}"
row "  DNS" "${dns:-0}"
row applying "${applying:-0}"
row detectors "${detectors:-0}"
row rest $((total - ${reading:-0} - ${applying:-0} - ${detectors:-0}))
