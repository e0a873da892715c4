//! Results as files: a JSON array, JSON lines, or CSV.

use serde_json::Value;

use super::exec::Output;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
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

/// One CSV field, quoted when it must be (RFC 4180).
pub fn csv_field(f: &str) -> String {
    if f.contains([',', '"', '\r', '\n']) {
        format!("\"{}\"", f.replace('"', "\"\""))
    } else {
        f.to_string()
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::regions::qql::exec::Stats;

    fn output(columns: &[&str], rows: Vec<Value>) -> Output {
        Output {
            columns: columns.iter().map(|c| (*c).to_string()).collect(),
            rows,
            stats: Stats::default(),
        }
    }

    #[test]
    fn json_and_jsonl() {
        let o = output(&["a"], vec![json!({"a": 1}), json!({"a": "x"})]);
        assert_eq!(
            render(&o, Format::Json),
            "[\n{\"a\":1},\n{\"a\":\"x\"}\n]\n"
        );
        assert_eq!(render(&o, Format::Jsonl), "{\"a\":1}\n{\"a\":\"x\"}\n");
        let empty = output(&["a"], vec![]);
        assert_eq!(render(&empty, Format::Json), "[]\n");
        assert_eq!(render(&empty, Format::Jsonl), "");
        assert_eq!(Format::from_extension("jsonl"), Some(Format::Jsonl));
        assert_eq!(Format::from_extension("json"), Some(Format::Json));
        assert_eq!(Format::from_extension("csv"), Some(Format::Csv));
        assert_eq!(Format::from_extension("txt"), None);
    }

    #[test]
    fn csv_quotes_per_rfc_4180_and_writes_nested_values_as_json() {
        let o = output(
            &["name", "n", "tags", "note"],
            vec![
                json!({"name": "Al, \"the\" one", "n": 1.5, "tags": ["a", "b"], "note": null}),
                json!({"name": "line\nbreak", "tags": {"k": true}}),
            ],
        );
        assert_eq!(
            render(&o, Format::Csv),
            "name,n,tags,note\r\n\"Al, \"\"the\"\" one\",1.5,\"[\"\"a\"\",\"\"b\"\"]\",\r\n\"line\nbreak\",,\"{\"\"k\"\":true}\",\r\n"
        );
    }

    #[test]
    fn csv_of_whole_records_takes_every_member_met() {
        let o = output(
            &[],
            vec![json!({"b": 1}), json!({"a": 2, "b": 3}), json!(7)],
        );
        assert_eq!(
            render(&o, Format::Csv),
            "b,a,value\r\n1,,\r\n3,2,\r\n,,7\r\n"
        );
    }
}
