//! Results as files: a JSON array, JSON lines, or CSV.

use serde_json::Value;

use super::exec::Output;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// One array, a row a line.
    Json,
    /// A row a line.
    Jsonl,
    /// RFC 4180: a header of the column names, CRLF line ends, a field quoted (its `"`
    /// doubled) when it holds a comma, a quote, CR or LF. Strings are written as they
    /// are, null and absent values as an empty field, other values as JSON text.
    Csv,
}

impl Format {
    /// The format of a result file name's extension (`json`, `jsonl`, `csv`).
    pub fn from_extension(ext: &str) -> Option<Format> {
        match ext {
            "json" => Some(Format::Json),
            "jsonl" => Some(Format::Jsonl),
            "csv" => Some(Format::Csv),
            _ => None,
        }
    }
}

pub fn render(out: &Output, format: Format) -> String {
    match format {
        Format::Json if out.rows.is_empty() => "[]\n".to_string(),
        Format::Json => {
            let rows: Vec<String> = out.rows.iter().map(Value::to_string).collect();
            format!("[\n{}\n]\n", rows.join(",\n"))
        }
        Format::Jsonl => out.rows.iter().map(|r| format!("{r}\n")).collect(),
        Format::Csv => csv(out),
    }
}

/// The CSV's columns: the SELECT's, or (whole records) every top-level member met, in
/// the order first met; rows that are not objects make one column `value`.
fn csv_columns(out: &Output) -> Vec<String> {
    if !out.columns.is_empty() {
        return out.columns.clone();
    }
    let mut cols: Vec<String> = Vec::new();
    for r in &out.rows {
        match r {
            Value::Object(m) => {
                for k in m.keys() {
                    if !cols.contains(k) {
                        cols.push(k.clone());
                    }
                }
            }
            _ if !cols.iter().any(|c| c == "value") => cols.push("value".into()),
            _ => {}
        }
    }
    cols
}

fn csv(out: &Output) -> String {
    let cols = csv_columns(out);
    let mut s = String::new();
    let line = |s: &mut String, fields: Vec<String>| {
        let fields: Vec<String> = fields.iter().map(|f| csv_field(f)).collect();
        s.push_str(&fields.join(","));
        s.push_str("\r\n");
    };
    line(&mut s, cols.clone());
    for r in &out.rows {
        let fields = cols
            .iter()
            .map(|c| {
                let v = match r {
                    Value::Object(m) => m.get(c),
                    other if c == "value" => Some(other),
                    _ => None,
                };
                match v {
                    None | Some(Value::Null) => String::new(),
                    Some(Value::String(s)) => s.clone(),
                    Some(v) => v.to_string(),
                }
            })
            .collect();
        line(&mut s, fields);
    }
    s
}

fn csv_field(f: &str) -> String {
    if f.contains([',', '"', '\r', '\n']) {
        format!("\"{}\"", f.replace('"', "\"\""))
    } else {
        f.to_string()
    }
}
