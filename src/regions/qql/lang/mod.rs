//! The language: tokens, syntax tree, parser, JSON paths and the order of JSON values.

pub mod ast;
pub mod error;
mod expr;
pub mod lexer;
pub mod parser;
pub mod path;
pub mod value;

#[cfg(test)]
mod tests;
