# Shared by the bench scripts, sourced from the repository's root.

# KPCAP: the binary to measure, if given; else a fresh release build.
kpcap_under_test() {
  if [ -z "${KPCAP:-}" ]; then
    cargo build --release -q
    KPCAP=target/release/kpcap
  fi
}

# busy_capture FILE SIZE: `synth --scenario busy` of SIZE written to FILE,
# unless it is there already.
busy_capture() {
  if [ ! -f "$1" ]; then
    mkdir -p "$(dirname "$1")"
    "$KPCAP" synth --scenario busy --size "$2" -o "$1" >&2
  fi
}
