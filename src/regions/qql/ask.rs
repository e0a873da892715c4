//! `qql/ask` (and `ask.jsonl`, `ask.csv`): the ad-hoc control file. What one handle
//! writes is the query; a read of the same handle, from offset 0, answers it (computed
//! at the first read, then served from the answer). Writing again after a read asks a
//! new query. Opened but not written, it shows how to use it.

use std::sync::Arc;

use serde_json::json;

use super::eval;
use super::format::Format;
use super::state::State;
use crate::error::{Error, Result};
use crate::regions::graph::Reader;
use crate::regions::{Check, Cx, Rule, Sink};

/// Queries longer than this are refused (a query is text, not data).
const MAX_QUERY: usize = 1 << 20;

pub struct Ask {
    state: Arc<State>,
    graph: Reader,
    format: Format,
    text: Vec<u8>,
    answer: Option<Arc<Vec<u8>>>,
}

impl Ask {
    pub fn new(state: Arc<State>, graph: Reader, format: Format) -> Ask {
        Ask {
            state,
            graph,
            format,
            text: Vec::new(),
            answer: None,
        }
    }
}

impl Sink for Ask {
    fn write(&mut self, _cx: &Cx<'_>, bytes: &[u8]) -> Result<usize> {
        if self.answer.take().is_some() {
            self.text.clear();
        }
        if self.text.len() + bytes.len() > MAX_QUERY {
            return Err(Error::InvalidArgument("a query is at most 1 MiB"));
        }
        self.text.extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn sync(&mut self, _cx: &Cx<'_>) -> Result<()> {
        Ok(())
    }

    fn close(&mut self, _cx: &Cx<'_>) -> Result<()> {
        Ok(())
    }

    fn ends_at_close(&self) -> bool {
        false
    }

    fn answer(&mut self, cx: &Cx<'_>) -> Option<Result<Arc<Vec<u8>>>> {
        if self.text.is_empty() {
            return None;
        }
        if let Some(a) = &self.answer {
            return Some(Ok(a.clone()));
        }
        let text = String::from_utf8_lossy(&self.text).into_owned();
        let bytes = match eval::answer(&self.state, cx, &self.graph, &text, self.format) {
            Ok(a) => a.bytes,
            Err(e) => {
                log::info!("qql/ask: {e}");
                Arc::new(crate::regions::pretty(&e.json()))
            }
        };
        self.answer = Some(bytes.clone());
        Some(Ok(bytes))
    }
}

/// What reading the control file without asking shows.
pub fn usage(format: Format) -> Vec<u8> {
    let name = super::region::ASK
        .iter()
        .find(|(_, f)| *f == format)
        .map_or("ask", |(n, _)| *n);
    crate::regions::pretty(&json!({
        "usage": format!(
            "open qql/{name} read-write, write a query (QQL.md), then read the answer \
             from offset 0 of the same handle; or run `islabdb query MOUNTPOINT 'QUERY'`"
        ),
        "example": "FROM spacetime/*/particles/users WHERE .age >= 30 SELECT .name ORDER BY .name",
        "errors": "an answer {\"error\": {\"position\": \"line:column\", \"message\": …}}",
    }))
}

/// A saved query must parse: checked at commit, refused with the position.
pub fn query_rule() -> Rule {
    Rule {
        id: "qql",
        check: Box::new(QueryCheck(Vec::new())),
    }
}

struct QueryCheck(Vec<u8>);

impl Check for QueryCheck {
    fn feed(&mut self, bytes: &[u8]) -> Result<()> {
        if self.0.len() + bytes.len() > MAX_QUERY {
            return Err(Error::InvalidArgument("a query is at most 1 MiB"));
        }
        self.0.extend_from_slice(bytes);
        Ok(())
    }

    fn finish(&mut self) -> Result<()> {
        if self.0.iter().all(u8::is_ascii_whitespace) {
            return Ok(());
        }
        let text = std::str::from_utf8(&self.0)
            .map_err(|_| Error::InvalidRecord("a query is UTF-8 text".into()))?;
        super::lang::parser::parse(text)
            .map(drop)
            .map_err(|e| Error::InvalidRecord(format!("{}: {}", e.pos, e.message)))
    }
}
