//! Rows: one or more items (the FROM's record, then one per JOIN), each a JSON value with
//! its meta fields, and what rows are resolved against.

use std::cmp::Ordering;

use serde_json::{Map, Value};

use super::super::lang::path::JsonPath;
use super::super::lang::value::cmp_opt;
use super::super::source::Record;

#[derive(Debug, Clone, PartialEq)]
pub struct Item {
    pub value: Value,
    /// Meta fields by name without the `@` (`key`, `path`, `edge`…).
    pub meta: Map<String, Value>,
}

impl Item {
    pub fn of_record(r: Record) -> Item {
        let mut meta = Map::new();
        meta.insert("key".into(), Value::String(r.key));
        meta.insert("path".into(), Value::String(r.path));
        meta.insert("collection".into(), Value::String(r.collection));
        if let Some(t) = r.tier {
            meta.insert("tier".into(), Value::String(t));
        }
        Item {
            value: r.value,
            meta,
        }
    }

    pub fn key(&self) -> Option<&str> {
        self.meta.get("key").and_then(Value::as_str)
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    pub items: Vec<Item>,
    /// The last sort key: what orders rows that ORDER BY leaves equal, so that every
    /// result has one order (records: their paths; events: their place in the stream;
    /// groups: their keys).
    pub tie: Vec<Option<Value>>,
}

impl Row {
    pub fn of_record(r: Record) -> Row {
        let tie = vec![Some(Value::String(r.path.clone()))];
        Row {
            items: vec![Item::of_record(r)],
            tie,
        }
    }

    pub fn cmp_tie(&self, other: &Row) -> Ordering {
        cmp_ties(&self.tie, &other.tie)
    }
}

/// The order of two rows' last sort keys.
pub fn cmp_ties(a: &[Option<Value>], b: &[Option<Value>]) -> Ordering {
    a.iter()
        .zip(b)
        .map(|(a, b)| cmp_opt(a.as_ref(), b.as_ref()))
        .find(|o| o.is_ne())
        .unwrap_or_else(|| a.len().cmp(&b.len()))
}

/// Where a reference reads: an item's value or meta field, then a path into it.
#[derive(Debug, Clone, PartialEq)]
pub struct Slot {
    /// `None` with a meta field: the first item that has it (so `@edge` finds the
    /// joined record's edge); `None` without: the FROM's record.
    pub item: Option<usize>,
    pub meta: Option<String>,
    pub path: JsonPath,
}

impl Slot {
    pub fn get<'a>(&self, row: &'a Row) -> Option<&'a Value> {
        let base = match (self.item, &self.meta) {
            (Some(i), None) => &row.items.get(i)?.value,
            (Some(i), Some(m)) => row.items.get(i)?.meta.get(m)?,
            (None, Some(m)) => row.items.iter().find_map(|it| it.meta.get(m))?,
            (None, None) => &row.items.first()?.value,
        };
        self.path.get(base)
    }

    /// A plain path into the FROM's record (what an index can serve).
    pub fn record_path(&self) -> Option<&JsonPath> {
        (self.item.unwrap_or(0) == 0 && self.meta.is_none()).then_some(&self.path)
    }
}
