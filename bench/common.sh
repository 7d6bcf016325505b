# Shared by the bench scripts, sourced from the repository's root.

# require TOOL PACKAGE: without TOOL, says so and ends the script (exit 0:
# a machine without it measures nothing, and that is not a failure).
require() {
  if ! command -v "$1" >/dev/null; then
    echo "$(basename "$0"): $1 is not installed (Debian: apt-get install $2); nothing measured" >&2
    exit 0
  fi
}

# KPCAP: the binary to measure, if given; else a fresh release build.
kpcap_under_test() {
  if [ -z "${KPCAP:-}" ]; then
    cargo build --release -q
    KPCAP=target/release/kpcap
  fi
}

# busy_capture FILE SIZE: `synth --scenario busy` of SIZE (seen as VIEW, if
# set) written to FILE, unless it is there already.
busy_capture() {
  if [ ! -f "$1" ]; then
    mkdir -p "$(dirname "$1")"
    "$KPCAP" synth --scenario busy --size "$2" ${VIEW:+--view "$VIEW"} -o "$1" >&2
  fi
}
