pub mod blocks;
pub mod metrics;
pub mod time;
