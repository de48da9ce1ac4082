//! placeholder
#[derive(clap::Args, Debug)]
pub struct CalibrateArgs {}
pub fn main(_a: CalibrateArgs) -> i32 {
    0
}
