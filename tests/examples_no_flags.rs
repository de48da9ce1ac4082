//! The README says every example runs with no flags: all of them at once against the
//! built-in simulator (about 80 s on 2 cores). Its own test binary, so this load
//! overlaps no other test.

mod common;

use common::*;

#[test]
fn every_example_runs_with_no_flags() {
    every_example_runs(&[]);
}
