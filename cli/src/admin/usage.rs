//! `berth admin usage`: accounted core-, GiB-, GPU- and GPU-share-seconds per day, per user,
//! project or node. Admins see everyone's; a user gets their own.

use crate::client::{segment, Client};
use crate::table::{self, Table};
use crate::Result;
use api::usage::{UsageGroupBy, UsageReport};

/// Runs `admin usage`.
pub(super) async fn usage(
    c: &Client,
    from: Option<String>,
    to: Option<String>,
    group_by: Option<String>,
    json: bool,
    csv: bool,
) -> Result<()> {
    let mut query = Vec::new();
    for (key, value) in [("from", from), ("to", to), ("group_by", group_by)] {
        if let Some(v) = value {
            query.push(format!("{key}={}", segment(&v)));
        }
    }
    let path = if query.is_empty() {
        "/api/v1/usage".to_string()
    } else {
        format!("/api/v1/usage?{}", query.join("&"))
    };
    let report: UsageReport = c.get(&path).await?;
    if json {
        table::print_json(&report);
    } else if csv {
        print!("{}", report.to_csv());
    } else if report.rows.is_empty() {
        eprintln!("No usage from {} to {}.", report.from, report.to);
    } else {
        print!("{}", usage_table(&report).render());
        eprintln!(
            "Hours from {} to {} (UTC days); --json or --csv give the exact seconds.",
            report.from, report.to
        );
    }
    Ok(())
}

/// An exact decimal string of seconds as hours with two decimals, for people.
fn hours(seconds: &str) -> String {
    format!("{:.2}", seconds.parse::<f64>().unwrap_or(0.0) / 3600.0)
}

/// One line per day and group, then one `total` line per group.
pub fn usage_table(r: &UsageReport) -> Table {
    let group = match r.group_by {
        UsageGroupBy::User => "USER",
        UsageGroupBy::Project => "PROJECT",
        UsageGroupBy::Node => "NODE",
    };
    let mut t = Table::new(&[
        "DAY",
        group,
        "SESSIONS",
        "CORE-H",
        "GIB-H",
        "GPU-H",
        "GPU-SHARE-H",
    ]);
    let name = |n: &Option<String>| n.clone().unwrap_or_else(|| "-".into());
    for row in &r.rows {
        t.row(vec![
            row.day.clone(),
            name(&row.name),
            row.sessions.to_string(),
            hours(&row.core_seconds),
            hours(&row.gib_seconds),
            hours(&row.gpu_seconds),
            hours(&row.gpu_share_seconds),
        ]);
    }
    for total in &r.totals {
        t.row(vec![
            "total".into(),
            name(&total.name),
            total.sessions.to_string(),
            hours(&total.core_seconds),
            hours(&total.gib_seconds),
            hours(&total.gpu_seconds),
            hours(&total.gpu_share_seconds),
        ]);
    }
    t
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn usage_tables_show_hours_per_day_and_totals() {
        let figures = |core: &str| {
            json!({"sessions": 1, "core_seconds": core, "gib_seconds": "1800",
                   "gpu_seconds": "0", "gpu_share_seconds": "1080"})
        };
        let mut row = figures("5400");
        row["day"] = json!("2026-01-10");
        row["group"] = json!(null);
        row["name"] = json!(null);
        let mut total = figures("5400");
        total["group"] = json!(null);
        total["name"] = json!(null);
        let r: UsageReport = serde_json::from_value(json!({
            "from": "2026-01-01", "to": "2026-01-30", "group_by": "PROJECT",
            "rows": [row], "totals": [total]}))
        .unwrap();
        let out = usage_table(&r).render();
        assert!(
            out.starts_with("DAY         PROJECT  SESSIONS  CORE-H"),
            "{out}"
        );
        assert!(
            out.contains("2026-01-10  -        1         1.50    0.50   0.00   0.30"),
            "{out}"
        );
        assert!(out.contains("total       -        1         1.50"), "{out}");
    }
}
