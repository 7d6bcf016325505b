use crate::cli::{MergeArgs, ScanArgs};
use anyhow::Result;
pub fn scan(_args: ScanArgs) -> Result<i32> {
    todo!()
}
pub fn merge(_args: MergeArgs) -> Result<i32> {
    todo!()
}
