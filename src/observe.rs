//! The contract between the parallel engine (`pipeline`) and the state it
//! folds (`flow`, `detect`): the view of one record the engine hands to
//! `observe`, and the step it calls after each window of chunks. It sits
//! below both, so neither imports the other.

use crate::capture::Record;
use crate::decode::Packet;
use crate::interface::Via;

/// One record as the observers see it.
#[derive(Debug, Clone, Copy)]
pub struct Seen<'a> {
    pub record: Record<'a>,
    pub packet: Packet<'a>,
    pub via: Via,
    /// A copy of a packet already seen on another interface: it records
    /// the interface it crossed, and counts nowhere else.
    pub duplicate: bool,
}

/// State folded from records. `observe` may defer work (the flow table
/// queues events per partition); `settle` does it, after each window of
/// chunks is merged in, and bounds the state again (`--max-flows`).
pub trait Settle {
    fn settle(&mut self);

    /// `settle` for a state that holds everything read so far (the
    /// engine's, not one capture's or one segment's part): work that needs
    /// all earlier records, such as filing a TCP stream's messages from
    /// wherever its bytes begin, is done here.
    fn settle_whole(&mut self) {
        self.settle()
    }
}
