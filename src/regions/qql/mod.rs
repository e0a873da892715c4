#![cfg_attr(
    not(test),
    expect(dead_code, reason = "wired into the qql region next")
)]

pub mod schema;
