#![cfg_attr(
    not(test),
    expect(dead_code, reason = "wired into the qql region next")
)]
//! QQL, the universe's query language (QQL.md): the language (`lang`: lexer, parser,
//! the JSON value order), its planning and execution (`exec`) over the data-access trait
//! [`source::Source`], result formatting (`format`) and the compiled form (`compiled`).
//! Nothing here touches the filesystem: the `qql/` region implements `Source` over the
//! engine and serves what this module computes.
//!
//! The calls, in order: [`lang::parser::parse`] text into a [`lang::ast::Query`],
//! [`exec::plan::plan`] it against a source, [`exec::run::run`] the plan, then
//! [`format::render`] the output; [`compiled::encode`] / [`compiled::decode`] store a
//! query as `hash_<h>.erl`, named by [`compiled::hash`].

pub mod compiled;
pub mod exec;
pub mod format;
pub mod lang;
pub mod source;

#[cfg(test)]
mod memsource;
#[cfg(test)]
mod prop_tests;
