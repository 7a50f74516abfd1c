//! Output for people and scripts: aligned tables, short human forms of sizes, times and
//! durations, and a pretty-printer that keeps the server's JSON exactly as sent (same keys,
//! same order, same numbers), only indented.

use serde_json::Value;

/// A table of left-aligned columns separated by two spaces, headers in capitals.
pub struct Table {
    headers: Vec<&'static str>,
    rows: Vec<Vec<String>>,
}

impl Table {
    pub fn new(headers: &[&'static str]) -> Self {
        Self {
            headers: headers.to_vec(),
            rows: Vec::new(),
        }
    }

    pub fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }

    /// The table as text, one line per row, each ending in a newline; no trailing blanks.
    pub fn render(&self) -> String {
        let n = self.headers.len();
        let mut widths: Vec<usize> = self.headers.iter().map(|h| h.chars().count()).collect();
        for r in &self.rows {
            for (i, c) in r.iter().enumerate().take(n) {
                widths[i] = widths[i].max(c.chars().count());
            }
        }
        let mut out = String::new();
        let header: Vec<String> = self.headers.iter().map(|h| h.to_string()).collect();
        for r in std::iter::once(&header).chain(self.rows.iter()) {
            let mut line = String::new();
            for (i, width) in widths.iter().enumerate() {
                let cell = r.get(i).map(String::as_str).unwrap_or("");
                line.push_str(cell);
                if i + 1 < n {
                    let pad = width - cell.chars().count() + 2;
                    line.extend(std::iter::repeat_n(' ', pad));
                }
            }
            out.push_str(line.trim_end());
            out.push('\n');
        }
        out
    }
}

/// At most `max` characters, with `…` as the last one when cut; newlines become spaces.
pub fn truncate(s: &str, max: usize) -> String {
    let flat: String = s
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if flat.chars().count() <= max {
        return flat;
    }
    let mut out: String = flat.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

/// A string field of a JSON object, or "" when absent or not a string.
pub fn s<'a>(v: &'a Value, key: &str) -> &'a str {
    v.get(key).and_then(Value::as_str).unwrap_or("")
}

/// A field shown as text: strings as they are, null or absent as `-`, others as JSON.
pub fn show(v: &Value, key: &str) -> String {
    match v.get(key) {
        None | Some(Value::Null) => "-".into(),
        Some(Value::String(x)) if x.is_empty() => "-".into(),
        Some(Value::String(x)) => x.clone(),
        Some(other) => other.to_string(),
    }
}

/// Bytes in a short binary form: `128Mi`-style with a space: `128 MiB`, `1.5 GiB`.
pub fn bytes(v: &Value) -> String {
    match v {
        Value::Number(n) => match n.as_u64() {
            Some(b) => api::Bytes(b).human(),
            None => n.to_string(),
        },
        Value::String(x) => x.clone(),
        Value::Null => "-".into(),
        other => other.to_string(),
    }
}

/// A count of seconds as `45s`, `3m`, `2h5m`, `4d3h`.
pub fn duration(secs: u64) -> String {
    let (d, h, m, s) = (
        secs / 86_400,
        secs % 86_400 / 3600,
        secs % 3600 / 60,
        secs % 60,
    );
    match (d, h, m) {
        (0, 0, 0) => format!("{s}s"),
        (0, 0, _) if s == 0 => format!("{m}m"),
        (0, 0, _) => format!("{m}m{s}s"),
        (0, _, 0) => format!("{h}h"),
        (0, _, _) => format!("{h}h{m}m"),
        (_, 0, _) => format!("{d}d"),
        _ => format!("{d}d{h}h"),
    }
}

fn parse_time(t: &str) -> Option<time::OffsetDateTime> {
    time::OffsetDateTime::parse(t, &time::format_description::well_known::Rfc3339).ok()
}

/// How long ago an RFC 3339 time was, coarsely (`5s`, `3m`, `2h`, `4d`); the text itself
/// when it does not parse.
pub fn age(t: &str) -> String {
    age_at(t, time::OffsetDateTime::now_utc())
}

fn age_at(t: &str, now: time::OffsetDateTime) -> String {
    let Some(then) = parse_time(t) else {
        return if t.is_empty() { "-".into() } else { t.into() };
    };
    let secs = (now - then).whole_seconds().max(0) as u64;
    let coarse = if secs < 60 {
        secs
    } else if secs < 3600 {
        secs / 60 * 60
    } else if secs < 86_400 {
        secs / 3600 * 3600
    } else {
        secs / 86_400 * 86_400
    };
    duration(coarse)
}

/// An RFC 3339 time and its age: `2025-01-02T03:04:05Z (3m ago)`; `-` when absent.
pub fn when(v: &Value, key: &str) -> String {
    match v.get(key).and_then(Value::as_str) {
        Some(t) if !t.is_empty() => match parse_time(t) {
            Some(_) => format!("{t} ({} ago)", age(t)),
            None => t.to_string(),
        },
        _ => "-".into(),
    }
}

/// Orders two RFC 3339 times (unparsable ones first).
pub fn time_key(t: &str) -> Option<time::OffsetDateTime> {
    parse_time(t)
}

/// A resources object in one line: `0.1 CPU, 128 MiB` (GPUs only when asked for).
pub fn resources(r: &Value) -> String {
    if !r.is_object() {
        return "-".into();
    }
    let mut out = format!("{} CPU, {}", show(r, "cpu"), bytes(&r["mem"]));
    match &r["gpu"] {
        Value::Number(n) if n.as_u64() != Some(0) => out.push_str(&format!(", {n} GPU")),
        _ => {}
    }
    match &r["gpu_shares"] {
        Value::String(x) if !x.is_empty() && x != "0" => {
            out.push_str(&format!(", {x} GPU shares"));
        }
        _ => {}
    }
    out
}

/// Indents JSON text the way `serde_json::to_string_pretty` does, without re-parsing it into
/// a map: keys keep the server's order and numbers keep their spelling. The input must be
/// valid JSON (checked by the caller).
pub fn pretty_json(raw: &str) -> String {
    let chars: Vec<char> = raw.chars().collect();
    let mut out = String::with_capacity(raw.len() * 2);
    let mut depth = 0usize;
    let mut i = 0;
    let newline = |out: &mut String, depth: usize| {
        out.push('\n');
        for _ in 0..depth {
            out.push_str("  ");
        }
    };
    while i < chars.len() {
        let c = chars[i];
        match c {
            '"' => {
                out.push(c);
                i += 1;
                while i < chars.len() {
                    let d = chars[i];
                    out.push(d);
                    i += 1;
                    if d == '\\' {
                        if let Some(&e) = chars.get(i) {
                            out.push(e);
                            i += 1;
                        }
                    } else if d == '"' {
                        break;
                    }
                }
                continue;
            }
            '{' | '[' => {
                let close = if c == '{' { '}' } else { ']' };
                let mut j = i + 1;
                while j < chars.len() && chars[j].is_whitespace() {
                    j += 1;
                }
                out.push(c);
                if chars.get(j) == Some(&close) {
                    out.push(close);
                    i = j + 1;
                    continue;
                }
                depth += 1;
                newline(&mut out, depth);
            }
            '}' | ']' => {
                depth = depth.saturating_sub(1);
                newline(&mut out, depth);
                out.push(c);
            }
            ',' => {
                out.push(',');
                newline(&mut out, depth);
            }
            ':' => out.push_str(": "),
            c if c.is_whitespace() => {}
            c => out.push(c),
        }
        i += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn tables_align_columns() {
        let mut t = Table::new(&["NAME", "STATUS", "REASON"]);
        t.row(vec!["a".into(), "RUNNING".into(), String::new()]);
        t.row(vec!["longer-name".into(), "PENDING".into(), "waits".into()]);
        assert_eq!(
            t.render(),
            "NAME         STATUS   REASON\na            RUNNING\nlonger-name  PENDING  waits\n"
        );
    }

    #[test]
    fn truncates_with_an_ellipsis() {
        assert_eq!(truncate("short", 10), "short");
        assert_eq!(truncate("a long reason here", 8), "a long …");
        assert_eq!(truncate("two\nlines", 20), "two lines");
    }

    #[test]
    fn durations_and_ages() {
        assert_eq!(duration(5), "5s");
        assert_eq!(duration(180), "3m");
        assert_eq!(duration(185), "3m5s");
        assert_eq!(duration(7200), "2h");
        assert_eq!(duration(7500), "2h5m");
        assert_eq!(duration(86_400 * 4 + 3600 * 3), "4d3h");
        let now = time::OffsetDateTime::parse(
            "2025-01-02T03:10:00Z",
            &time::format_description::well_known::Rfc3339,
        )
        .unwrap();
        assert_eq!(age_at("2025-01-02T03:09:30Z", now), "30s");
        assert_eq!(age_at("2025-01-02T03:00:00Z", now), "10m");
        assert_eq!(age_at("2025-01-01T01:00:00Z", now), "1d");
        assert_eq!(age_at("garbage", now), "garbage");
    }

    #[test]
    fn resources_and_sizes() {
        assert_eq!(
            resources(&json!({"cpu": "0.1", "mem": 134217728, "gpu": 0, "gpu_shares": "0"})),
            "0.1 CPU, 128 MiB"
        );
        assert_eq!(
            resources(&json!({"cpu": "2", "mem": 1610612736u64, "gpu": 1, "gpu_shares": "0"})),
            "2 CPU, 1.5 GiB, 1 GPU"
        );
        assert_eq!(bytes(&json!(null)), "-");
    }

    #[test]
    fn pretty_json_keeps_order_and_spelling() {
        let raw = r#"{"zeta":1.50,"alpha":{"b":[],"a":{}},"s":"x,{\"y\":[1]}","l":[1, 2]}"#;
        let p = pretty_json(raw);
        assert_eq!(
            p,
            "{\n  \"zeta\": 1.50,\n  \"alpha\": {\n    \"b\": [],\n    \"a\": {}\n  },\n  \"s\": \"x,{\\\"y\\\":[1]}\",\n  \"l\": [\n    1,\n    2\n  ]\n}"
        );
        let back: Value = serde_json::from_str(&p).unwrap();
        let orig: Value = serde_json::from_str(raw).unwrap();
        assert_eq!(back, orig);
        // Same layout as serde_json's own pretty printer on ordinary input.
        let v = json!({"a": [1, {"b": null}], "c": "d"});
        assert_eq!(
            pretty_json(&v.to_string()),
            serde_json::to_string_pretty(&v).unwrap()
        );
    }
}
