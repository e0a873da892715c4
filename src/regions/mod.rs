//! Region handlers: what each part of the universe means beyond plain bytes. They decide
//! and describe; the engine stores.

pub mod config;
pub mod records;
pub mod views;
