//! Output for people and scripts: aligned tables, short human forms of times and durations,
//! and `--json` output (a decoded answer re-serialized, indented).

/// A table of left-aligned columns separated by two spaces, headers in capitals.
pub struct Table {
    headers: Vec<&'static str>,
    rows: Vec<Vec<String>>,
}

impl Table {
    /// An empty table with these column headers.
    pub fn new(headers: &[&'static str]) -> Self {
        Self {
            headers: headers.to_vec(),
            rows: Vec::new(),
        }
    }

    /// Adds a row (cells beyond the headers are ignored).
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
pub fn when(t: Option<&str>) -> String {
    match t {
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

/// Prints a decoded answer for scripts (`--json`): the value re-serialized, indented.
pub fn print_json<T: serde::Serialize + ?Sized>(v: &T) {
    match serde_json::to_string_pretty(v) {
        Ok(text) => println!("{text}"),
        // Only a map with non-string keys fails; none of the api types has one.
        Err(e) => eprintln!("berth: cannot print the answer as JSON: {e}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
