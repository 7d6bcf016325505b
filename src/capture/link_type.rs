//! The LINKTYPE_ values kpcap decodes.

/// True if `decode` understands frames of this link type.
pub fn link_type_supported(link_type: u32) -> bool {
    matches!(
        link_type,
        0 | 1 | 12 | 14 | 101 | 108 | 113 | 228 | 229 | 276
    )
}

/// A short human name for a LINKTYPE_ value.
pub fn link_type_name(link_type: u32) -> &'static str {
    match link_type {
        0 => "BSD null/loopback",
        1 => "Ethernet",
        9 => "PPP",
        12 | 14 | 101 => "raw IP",
        105 => "802.11",
        108 => "OpenBSD loopback",
        113 => "Linux SLL",
        127 => "802.11 radiotap",
        228 => "raw IPv4",
        229 => "raw IPv6",
        276 => "Linux SLL2",
        _ => "unknown",
    }
}
