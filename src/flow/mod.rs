//! Flows: the per-chunk table of conversations and address pairs, with an
//! associative, order-independent merge so chunks can be folded in any
//! order on any number of threads.

mod apply;
mod dense;
mod event;
mod evict;
mod key;
mod map;
mod stats;
mod table;

pub use dense::hash_of;
pub use evict::evict_idle;
pub use key::{ports, protocol_name, Direction, Endpoint, FlowKey};
pub use map::{partition_of, Partition, Partitioned, PartitionedMap, PARTITIONS};
pub use stats::{
    min_option, Crossing, Flow, PairSlots, PairStats, Protocols, Side, TcpState, MAX_CROSSINGS,
};
pub use table::{merge_maps, FlowMap, FlowTable, PairMap, Summary};
