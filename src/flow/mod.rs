//! Flows: the per-chunk table of conversations and address pairs, with an
//! associative, order-independent merge so chunks can be folded in any
//! order on any number of threads.

mod evict;
mod key;
mod map;
mod table;

pub use evict::evict_idle;
pub use key::{protocol_name, Direction, Endpoint, FlowKey};
pub use map::FlowMap;
pub use table::{
    merge_maps, Crossing, Flow, FlowTable, PairStats, Protocols, Side, Summary, TcpState,
};
