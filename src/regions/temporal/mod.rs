pub mod blocks;
pub mod time;
