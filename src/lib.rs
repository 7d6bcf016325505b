//! kpcap: offline forensics of packet captures taken on Kubernetes nodes.
//!
//! Data flows one way: bytes -> records (`capture`) -> decoded packets
//! (`decode`) -> per-chunk state (`flow`, `detect`) -> merged state ->
//! findings and verdict (`detect`) -> report.

pub mod analysis;
pub mod capture;
pub mod cluster;
pub mod decode;
pub mod detect;
pub mod diff;
pub mod error;
pub mod flow;
#[doc(hidden)]
pub mod fuzzing;
pub mod interface;
pub mod nodes;
pub mod observe;
mod ops;
pub mod pipeline;
pub mod prefetch;
pub mod report;
pub mod scan;
pub mod synth;
pub mod time;
pub mod topology;
