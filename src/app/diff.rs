use crate::cli::DiffArgs;
use anyhow::Result;
pub fn diff(_args: DiffArgs) -> Result<i32> {
    todo!()
}
