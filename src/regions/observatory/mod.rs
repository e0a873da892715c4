//! `observatory/`: what the daemon shows of its own health and load.

pub mod dashboard;
