//! Usage accounting: `GET /api/v1/usage` reports what sessions held — core-, GiB-, GPU- and
//! GPU-share-seconds — per UTC day and per user, project or node.
//!
//! A session holds its allocation from the moment it became `RUNNING` until it ended
//! (`TERMINATED`, `ERROR`); a session still running or terminating counts up to now. Both ends
//! are cut to whole seconds (the start and the end are each rounded down), and the interval is
//! split at UTC midnights ([`split_by_day`]), so a day's figures plus the neighbouring days'
//! add up to exactly the session's lifetime × its resources.
//!
//! All arithmetic is on integers ([`Amounts`]: millicore-seconds, byte-seconds, device-seconds,
//! hundredth-of-a-device-seconds, in `u128`), and the figures on the wire are exact decimal
//! strings of them ([`Amounts::figures`]): `core_seconds` has at most 3 decimals,
//! `gpu_share_seconds` at most 2, and `gib_seconds` (byte-seconds / 2^30, a finite decimal)
//! at most 30. Nothing is rounded, so rows add up to the totals exactly.

use crate::problem::FieldError;
use serde::{Deserialize, Serialize};
use std::fmt;

/// The longest range one report covers, in days (both ends included).
pub const MAX_DAYS: i64 = 366;
/// The range a report covers when `from` is left out: the last 30 days, today included.
pub const DEFAULT_DAYS: i64 = 30;
/// Seconds in a UTC day.
pub const DAY_SECS: i64 = 86_400;

/// A UTC calendar day, as days since 1970-01-01 (negative before).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Day(pub i64);

impl Day {
    /// Parses `YYYY-MM-DD` (a real date of the years 1970 to 9999); `None` for anything else.
    pub fn parse(s: &str) -> Option<Day> {
        let b = s.as_bytes();
        if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
            return None;
        }
        let num = |r: std::ops::Range<usize>| -> Option<i64> {
            let part = &s[r];
            part.bytes()
                .all(|c| c.is_ascii_digit())
                .then(|| part.parse().ok())
                .flatten()
        };
        let (y, m, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
        if !(1970..=9999).contains(&y) || !(1..=12).contains(&m) || d < 1 || d > month_len(y, m) {
            return None;
        }
        Some(Day(days_from_civil(y, m, d)))
    }

    /// The day holding the Unix time `secs`.
    pub fn of_unix(secs: i64) -> Day {
        Day(secs.div_euclid(DAY_SECS))
    }

    /// The Unix time of this day's midnight (its first second).
    pub fn start(self) -> i64 {
        self.0 * DAY_SECS
    }

    /// `(year, month, day)`.
    pub fn ymd(self) -> (i64, i64, i64) {
        civil_from_days(self.0)
    }

    pub fn plus(self, days: i64) -> Day {
        Day(self.0 + days)
    }
}

impl fmt::Display for Day {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (y, m, d) = self.ymd();
        write!(f, "{y:04}-{m:02}-{d:02}")
    }
}

fn is_leap(y: i64) -> bool {
    (y % 4 == 0 && y % 100 != 0) || y % 400 == 0
}

fn month_len(y: i64, m: i64) -> i64 {
    match m {
        2 if is_leap(y) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's `days_from_civil`).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The date of a day count (the inverse of [`days_from_civil`]).
fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

/// Splits the interval `[start, end)` of Unix seconds at UTC midnights and keeps the days
/// `from..=to`: `(day, seconds)` for each day of the range the interval overlaps, in order.
/// The parts add up to exactly the part of the interval inside the range (all of it when the
/// range covers it); an empty or reversed interval has no parts.
pub fn split_by_day(start: i64, end: i64, from: Day, to: Day) -> Vec<(Day, u64)> {
    let start = start.max(from.start());
    let end = end.min(to.plus(1).start());
    let mut out = Vec::new();
    let mut at = start;
    while at < end {
        let day = Day::of_unix(at);
        let next = day.plus(1).start().min(end);
        out.push((day, (next - at) as u64));
        at = next;
    }
    out
}

/// What a session held for some seconds, in exact integer units.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Amounts {
    /// Millicore-seconds.
    pub cpu_milli_s: u128,
    /// Byte-seconds of memory.
    pub mem_byte_s: u128,
    /// Whole-GPU device-seconds.
    pub gpu_s: u128,
    /// Seconds of GPU shares, in hundredths of a device.
    pub share_centi_s: u128,
}

impl Amounts {
    /// `secs` seconds of an allocation of `cpu_milli` millicores, `mem_bytes` bytes, `gpu`
    /// whole devices and `shares` hundredths of a device.
    pub fn held(cpu_milli: u64, mem_bytes: u64, gpu: u32, shares: u32, secs: u64) -> Amounts {
        let s = u128::from(secs);
        Amounts {
            cpu_milli_s: u128::from(cpu_milli) * s,
            mem_byte_s: u128::from(mem_bytes) * s,
            gpu_s: u128::from(gpu) * s,
            share_centi_s: u128::from(shares) * s,
        }
    }

    pub fn add(&mut self, o: &Amounts) {
        self.cpu_milli_s += o.cpu_milli_s;
        self.mem_byte_s += o.mem_byte_s;
        self.gpu_s += o.gpu_s;
        self.share_centi_s += o.share_centi_s;
    }

    /// The figures as exact decimal strings, in the order of [`UsageRow`]'s fields:
    /// core-seconds, GiB-seconds, GPU-seconds, GPU-share-seconds.
    pub fn figures(&self) -> [String; 4] {
        [
            decimal(self.cpu_milli_s, 3),
            binary_fraction(self.mem_byte_s, 30),
            self.gpu_s.to_string(),
            decimal(self.share_centi_s, 2),
        ]
    }
}

/// `v / 10^scale` as an exact decimal string without trailing zeros (`"1.5"`, `"2"`).
fn decimal(v: u128, scale: u32) -> String {
    let unit = 10u128.pow(scale);
    let (int, frac) = (v / unit, v % unit);
    if frac == 0 {
        return int.to_string();
    }
    let f = format!("{frac:0width$}", width = scale as usize);
    format!("{int}.{}", f.trim_end_matches('0'))
}

/// `v / 2^shift` as an exact decimal string (a binary fraction always ends in decimal, after
/// at most `shift` digits).
fn binary_fraction(v: u128, shift: u32) -> String {
    let mask = (1u128 << shift) - 1;
    let int = v >> shift;
    let mut frac = v & mask;
    if frac == 0 {
        return int.to_string();
    }
    let mut out = format!("{int}.");
    while frac != 0 {
        frac *= 10;
        out.push(char::from(b'0' + (frac >> shift) as u8));
        frac &= mask;
    }
    out
}

/// What a report is grouped by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "UPPERCASE")]
pub enum UsageGroupBy {
    /// The session's owner.
    #[default]
    User,
    /// The session's project (sessions without one form a group of their own).
    Project,
    /// The node the session ran on.
    Node,
}

impl UsageGroupBy {
    pub const ALL: [UsageGroupBy; 3] = [Self::User, Self::Project, Self::Node];

    /// `user`, `project` or `node`, as the query string writes it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::User => "user",
            Self::Project => "project",
            Self::Node => "node",
        }
    }

    /// Any case of `user`, `project` or `node`.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|g| g.as_str().eq_ignore_ascii_case(s.trim()))
    }
}

/// The answer's format: JSON ([`UsageReport`]) or CSV ([`UsageReport::to_csv`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum UsageFormat {
    #[default]
    Json,
    Csv,
}

/// `GET /api/v1/usage`'s query string as sent: every parameter is optional and checked by
/// [`UsageQuery::resolve`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UsageQuery {
    /// First day, `YYYY-MM-DD` (UTC); default: 29 days before `to`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    /// Last day, included, `YYYY-MM-DD` (UTC); default: today.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<String>,
    /// `user` (default), `project` or `node`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group_by: Option<String>,
    /// `json` (default) or `csv`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub format: Option<String>,
}

/// A checked [`UsageQuery`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UsageRange {
    pub from: Day,
    pub to: Day,
    pub group_by: UsageGroupBy,
    pub format: UsageFormat,
}

impl UsageQuery {
    /// Checks the query against `today` (UTC) and fills in the defaults: `to` today, `from`
    /// 29 days before `to`, grouped by user, as JSON. An empty parameter counts as left out.
    /// Each bad parameter is a field error with a sentence.
    pub fn resolve(&self, today: Day) -> Result<UsageRange, Vec<FieldError>> {
        fn given(v: &Option<String>) -> Option<&str> {
            v.as_deref().map(str::trim).filter(|v| !v.is_empty())
        }
        let mut errors = Vec::new();
        let day = |field: &str, v: Option<&str>, errors: &mut Vec<FieldError>| match v {
            None => None,
            Some(v) => {
                let d = Day::parse(v);
                if d.is_none() {
                    errors.push(FieldError::new(
                        field,
                        format!(
                            "\"{field}\" must be a date written YYYY-MM-DD (UTC, a year from 1970 to 9999), e.g. 2026-01-31; \"{}\" is not one.",
                            v.chars().take(40).collect::<String>()
                        ),
                    ));
                }
                Some(d)
            }
        };
        let from = day("from", given(&self.from), &mut errors);
        let to = day("to", given(&self.to), &mut errors);
        let group_by = match given(&self.group_by) {
            None => Some(UsageGroupBy::User),
            Some(g) => {
                let parsed = UsageGroupBy::parse(g);
                if parsed.is_none() {
                    errors.push(FieldError::new(
                        "group_by",
                        "\"group_by\" must be user, project or node.",
                    ));
                }
                parsed
            }
        };
        let format = match given(&self.format).map(str::to_ascii_lowercase).as_deref() {
            None | Some("json") => Some(UsageFormat::Json),
            Some("csv") => Some(UsageFormat::Csv),
            Some(_) => {
                errors.push(FieldError::new("format", "\"format\" must be json or csv."));
                None
            }
        };
        if !errors.is_empty() {
            return Err(errors);
        }
        let to = to.flatten().unwrap_or(today);
        let from = from.flatten().unwrap_or(to.plus(1 - DEFAULT_DAYS));
        if from > to {
            return Err(vec![FieldError::new(
                "to",
                format!("\"to\" ({to}) is before \"from\" ({from}); the range runs from the first day to the last, both included."),
            )]);
        }
        if to.0 - from.0 + 1 > MAX_DAYS {
            return Err(vec![FieldError::new(
                "from",
                format!(
                    "The range {from} to {to} is {} days long; ask for at most {MAX_DAYS} days at a time.",
                    to.0 - from.0 + 1
                ),
            )]);
        }
        Ok(UsageRange {
            from,
            to,
            group_by: group_by.unwrap_or_default(),
            format: format.unwrap_or_default(),
        })
    }
}

/// One group's usage on one day.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct UsageRow {
    /// The UTC day, `YYYY-MM-DD`.
    pub day: String,
    /// The group: a user's id, a project's id or a node's name; `null` for sessions without
    /// a project.
    pub group: Option<String>,
    /// The group's name: username, project name or node name; `null` with `group`.
    pub name: Option<String>,
    /// Sessions that held resources that day.
    pub sessions: u32,
    /// Core-seconds (millicores × seconds / 1000), an exact decimal string.
    pub core_seconds: String,
    /// GiB-seconds of memory (bytes × seconds / 2^30), an exact decimal string.
    pub gib_seconds: String,
    /// Whole-GPU seconds, an integer string.
    pub gpu_seconds: String,
    /// GPU-share-seconds (fractional devices × seconds), an exact decimal string.
    pub gpu_share_seconds: String,
}

/// One group's usage over the whole range.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct UsageTotal {
    /// As in [`UsageRow::group`].
    pub group: Option<String>,
    /// As in [`UsageRow::name`].
    pub name: Option<String>,
    /// Sessions that held resources in the range.
    pub sessions: u32,
    pub core_seconds: String,
    pub gib_seconds: String,
    pub gpu_seconds: String,
    pub gpu_share_seconds: String,
}

/// `GET /api/v1/usage`: per day and group, and per group over the range. Admins see every
/// session; a user sees only their own.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct UsageReport {
    /// First day, `YYYY-MM-DD`.
    pub from: String,
    /// Last day, included, `YYYY-MM-DD`.
    pub to: String,
    pub group_by: UsageGroupBy,
    /// Days with usage only, by day, then by name.
    pub rows: Vec<UsageRow>,
    /// Each group with usage in the range, by name: the sums of its rows.
    pub totals: Vec<UsageTotal>,
}

/// One session's allocation over one interval, as [`report`] takes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Held {
    /// The session's id (counted once per day and once per group).
    pub session: String,
    /// The group it belongs to ([`UsageRow::group`]) and the group's name.
    pub group: Option<String>,
    pub name: Option<String>,
    pub cpu_milli: u64,
    pub mem_bytes: u64,
    pub gpu: u32,
    /// Hundredths of a device.
    pub shares: u32,
    /// Unix seconds: from (became `RUNNING`), until (ended, or now).
    pub start: i64,
    pub end: i64,
}

/// The report of `held` over `range`: each interval split at UTC midnights and cut to the
/// range, summed per day and group (`rows`) and per group (`totals`), in integers.
pub fn report(range: &UsageRange, held: &[Held]) -> UsageReport {
    use std::collections::{BTreeMap, BTreeSet};
    type Key = (Option<String>, Option<String>);
    #[derive(Default)]
    struct Acc<'a> {
        amounts: Amounts,
        sessions: BTreeSet<&'a str>,
    }
    // Keyed by name first so the output comes out sorted by name.
    let key = |h: &Held| -> Key { (h.name.clone(), h.group.clone()) };
    let mut days: BTreeMap<(Day, Key), Acc> = BTreeMap::new();
    let mut totals: BTreeMap<Key, Acc> = BTreeMap::new();
    for h in held {
        for (day, secs) in split_by_day(h.start, h.end, range.from, range.to) {
            let a = Amounts::held(h.cpu_milli, h.mem_bytes, h.gpu, h.shares, secs);
            for acc in [
                days.entry((day, key(h))).or_default(),
                totals.entry(key(h)).or_default(),
            ] {
                acc.amounts.add(&a);
                acc.sessions.insert(&h.session);
            }
        }
    }
    let count = |acc: &Acc| u32::try_from(acc.sessions.len()).unwrap_or(u32::MAX);
    UsageReport {
        from: range.from.to_string(),
        to: range.to.to_string(),
        group_by: range.group_by,
        rows: days
            .iter()
            .map(|((day, (name, group)), acc)| {
                let [core, gib, gpu, share] = acc.amounts.figures();
                UsageRow {
                    day: day.to_string(),
                    group: group.clone(),
                    name: name.clone(),
                    sessions: count(acc),
                    core_seconds: core,
                    gib_seconds: gib,
                    gpu_seconds: gpu,
                    gpu_share_seconds: share,
                }
            })
            .collect(),
        totals: totals
            .iter()
            .map(|((name, group), acc)| {
                let [core, gib, gpu, share] = acc.amounts.figures();
                UsageTotal {
                    group: group.clone(),
                    name: name.clone(),
                    sessions: count(acc),
                    core_seconds: core,
                    gib_seconds: gib,
                    gpu_seconds: gpu,
                    gpu_share_seconds: share,
                }
            })
            .collect(),
    }
}

/// The header line of [`UsageReport::to_csv`].
pub const CSV_HEADER: &str =
    "day,group,name,sessions,core_seconds,gib_seconds,gpu_seconds,gpu_share_seconds";

/// A CSV field, quoted when it needs to be (RFC 4180).
fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

impl UsageReport {
    /// The rows as CSV (RFC 4180, CRLF line ends, [`CSV_HEADER`] first); a missing group is
    /// an empty field.
    pub fn to_csv(&self) -> String {
        let mut out = format!("{CSV_HEADER}\r\n");
        for r in &self.rows {
            let cells = [
                r.day.clone(),
                csv_field(r.group.as_deref().unwrap_or("")),
                csv_field(r.name.as_deref().unwrap_or("")),
                r.sessions.to_string(),
                r.core_seconds.clone(),
                r.gib_seconds.clone(),
                r.gpu_seconds.clone(),
                r.gpu_share_seconds.clone(),
            ];
            out.push_str(&cells.join(","));
            out.push_str("\r\n");
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(s: &str) -> Day {
        Day::parse(s).unwrap()
    }

    /// Unix seconds of `YYYY-MM-DDTHH:MM:SS` UTC.
    fn at(s: &str) -> i64 {
        let (d, t) = s.split_once('T').unwrap();
        let p: Vec<i64> = t.split(':').map(|x| x.parse().unwrap()).collect();
        day(d).start() + p[0] * 3600 + p[1] * 60 + p[2]
    }

    #[test]
    fn days_parse_and_print() {
        assert_eq!(day("1970-01-01"), Day(0));
        assert_eq!(day("2000-03-01").to_string(), "2000-03-01");
        assert_eq!(day("2024-02-29").plus(1).to_string(), "2024-03-01");
        assert_eq!(day("2026-12-31").plus(1).to_string(), "2027-01-01");
        // 2026-01-31T00:00:00Z is 1769817600.
        assert_eq!(day("2026-01-31").start(), 1_769_817_600);
        for bad in [
            "2025-02-29",
            "2026-13-01",
            "2026-00-10",
            "2026-04-31",
            "26-01-01",
            "2026-1-01",
            "2026/01/01",
            "1969-12-31",
            "+202-01-01",
            "2026-01-01T00:00:00Z",
            "",
        ] {
            assert_eq!(Day::parse(bad), None, "{bad}");
        }
        // Every day of four centuries round-trips.
        for n in day("1970-01-01").0..day("2400-12-31").0 {
            assert_eq!(Day::parse(&Day(n).to_string()), Some(Day(n)));
        }
    }

    #[test]
    fn a_session_across_midnight_is_split_exactly() {
        let (from, to) = (day("2026-01-01"), day("2026-01-31"));
        let parts = split_by_day(
            at("2026-01-10T22:30:15"),
            at("2026-01-12T01:00:00"),
            from,
            to,
        );
        assert_eq!(
            parts,
            vec![
                (day("2026-01-10"), 5385),
                (day("2026-01-11"), 86_400),
                (day("2026-01-12"), 3600),
            ]
        );
        let whole = at("2026-01-12T01:00:00") - at("2026-01-10T22:30:15");
        assert_eq!(parts.iter().map(|p| p.1).sum::<u64>(), whole as u64);
        // Exactly at midnight: the end is not part of the next day.
        assert_eq!(
            split_by_day(
                at("2026-01-10T23:00:00"),
                at("2026-01-11T00:00:00"),
                from,
                to
            ),
            vec![(day("2026-01-10"), 3600)]
        );
        // Cut to the range; nothing outside it.
        assert_eq!(
            split_by_day(
                at("2025-12-31T23:59:00"),
                at("2026-01-01T00:01:00"),
                from,
                to
            ),
            vec![(day("2026-01-01"), 60)]
        );
        assert!(split_by_day(
            at("2026-02-01T00:00:00"),
            at("2026-02-02T00:00:00"),
            from,
            to
        )
        .is_empty());
        assert!(split_by_day(10, 10, Day(0), Day(1)).is_empty());
        assert!(split_by_day(20, 10, Day(0), Day(1)).is_empty());
    }

    #[test]
    fn parts_always_add_up_to_the_whole() {
        // A simple deterministic generator (no extra crates in `api`).
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let base = day("2025-06-01").start();
        for _ in 0..2000 {
            let start = base + (next() % (40 * 86_400)) as i64;
            let end = start + (next() % (5 * 86_400)) as i64;
            let parts = split_by_day(start, end, Day(0), day("2100-01-01"));
            assert_eq!(parts.iter().map(|p| p.1).sum::<u64>(), (end - start) as u64);
            let (cpu, mem, gpu, sh) = (next() % 64_000, next() % (1 << 40), 3, 37);
            let whole = Amounts::held(cpu, mem, gpu, sh, (end - start) as u64);
            let mut sum = Amounts::default();
            for (d, s) in &parts {
                assert!(*s <= 86_400 && *s > 0, "{d} {s}");
                sum.add(&Amounts::held(cpu, mem, gpu, sh, *s));
            }
            assert_eq!(sum, whole);
        }
    }

    #[test]
    fn figures_are_exact_decimals() {
        // 1.5 cores, 768 MiB, 1 GPU and 0.3 of one for an hour.
        let a = Amounts::held(1500, 768 << 20, 1, 30, 3600);
        assert_eq!(a.figures(), ["5400", "2700", "3600", "1080"]);
        let b = Amounts::held(250, 1 << 20, 0, 15, 1);
        assert_eq!(b.figures(), ["0.25", "0.0009765625", "0", "0.15"]);
        // 0.1 + 0.2 is 0.3 here.
        let mut c = Amounts::held(100, 0, 0, 10, 1);
        c.add(&Amounts::held(200, 0, 0, 20, 1));
        assert_eq!(c.figures()[0], "0.3");
        assert_eq!(c.figures()[3], "0.3");
        // One byte for one second: 2^-30 GiB-seconds, all 30 digits.
        assert_eq!(
            Amounts::held(0, 1, 0, 0, 1).figures()[1],
            "0.000000000931322574615478515625"
        );
        // Large figures do not overflow: 64 TiB for a year.
        let big = Amounts::held(4_096_000, 64 << 40, 64, 6400, 366 * 86_400);
        assert_eq!(big.figures()[1], (64u128 * 1024 * 366 * 86_400).to_string());
    }

    fn q(from: &str, to: &str, group_by: &str) -> UsageQuery {
        let o = |s: &str| (!s.is_empty()).then(|| s.to_string());
        UsageQuery {
            from: o(from),
            to: o(to),
            group_by: o(group_by),
            format: None,
        }
    }

    #[test]
    fn queries_resolve_with_defaults_and_refuse_bad_input() {
        let today = day("2026-03-10");
        let r = q("", "", "").resolve(today).unwrap();
        assert_eq!((r.from, r.to), (day("2026-02-09"), today));
        assert_eq!(r.to.0 - r.from.0 + 1, DEFAULT_DAYS);
        assert_eq!(r.group_by, UsageGroupBy::User);
        assert_eq!(r.format, UsageFormat::Json);
        let r = q("2026-01-01", "2026-01-01", "NODE")
            .resolve(today)
            .unwrap();
        assert_eq!(
            (r.from, r.to, r.group_by),
            (day("2026-01-01"), day("2026-01-01"), UsageGroupBy::Node)
        );
        assert!(q("2025-01-01", "2026-01-01", "project")
            .resolve(today)
            .is_ok());
        let field = |q: UsageQuery| -> Vec<String> {
            q.resolve(today)
                .unwrap_err()
                .into_iter()
                .map(|e| e.field)
                .collect()
        };
        assert_eq!(field(q("2026-02-30", "", "")), ["from"]);
        assert_eq!(field(q("", "yesterday", "")), ["to"]);
        assert_eq!(field(q("x", "y", "team")), ["from", "to", "group_by"]);
        assert_eq!(field(q("2026-01-02", "2026-01-01", "")), ["to"]);
        assert_eq!(field(q("2024-12-31", "2026-01-01", "")), ["from"]);
        assert_eq!(field(q("2020-01-01", "", "")), ["from"]);
        let mut f = q("", "", "");
        f.format = Some("xml".into());
        assert_eq!(field(f), ["format"]);
        let msg = q("2026-01-02", "2026-01-01", "")
            .resolve(today)
            .unwrap_err();
        assert!(msg[0].message.contains("before"), "{msg:?}");
    }

    #[test]
    fn csv_has_a_header_and_quotes_when_needed() {
        let report = UsageReport {
            from: "2026-01-01".into(),
            to: "2026-01-02".into(),
            group_by: UsageGroupBy::Project,
            rows: vec![
                UsageRow {
                    day: "2026-01-01".into(),
                    group: Some("p1".into()),
                    name: Some("a,\"b\"".into()),
                    sessions: 2,
                    core_seconds: "1.5".into(),
                    gib_seconds: "2".into(),
                    gpu_seconds: "0".into(),
                    gpu_share_seconds: "0.3".into(),
                },
                UsageRow {
                    day: "2026-01-02".into(),
                    group: None,
                    name: None,
                    sessions: 1,
                    core_seconds: "1".into(),
                    gib_seconds: "1".into(),
                    gpu_seconds: "0".into(),
                    gpu_share_seconds: "0".into(),
                },
            ],
            totals: vec![],
        };
        assert_eq!(
            report.to_csv(),
            format!("{CSV_HEADER}\r\n2026-01-01,p1,\"a,\"\"b\"\"\",2,1.5,2,0,0.3\r\n2026-01-02,,,1,1,1,0,0\r\n")
        );
    }

    #[test]
    fn reports_sum_per_day_and_group_exactly() {
        let range = UsageQuery {
            from: Some("2026-01-10".into()),
            to: Some("2026-01-11".into()),
            ..Default::default()
        }
        .resolve(day("2026-02-01"))
        .unwrap();
        let held = |session: &str, who: &str, start: &str, end: &str| Held {
            session: session.into(),
            group: Some(format!("id-{who}")),
            name: Some(who.into()),
            cpu_milli: 1500,
            mem_bytes: 512 << 20,
            gpu: 1,
            shares: 30,
            start: at(start),
            end: at(end),
        };
        let r = report(
            &range,
            &[
                // 23:00 to 01:00 across midnight: one hour on each day.
                held("s1", "bob", "2026-01-10T23:00:00", "2026-01-11T01:00:00"),
                held("s2", "alice", "2026-01-11T12:00:00", "2026-01-11T12:00:10"),
                // Outside the range: not counted at all.
                held("s3", "alice", "2026-01-12T00:00:00", "2026-01-12T05:00:00"),
                held("s4", "bob", "2026-01-09T00:00:00", "2026-01-10T00:00:00"),
            ],
        );
        let rows: Vec<_> = r
            .rows
            .iter()
            .map(|r| {
                (
                    r.day.as_str(),
                    r.name.as_deref().unwrap(),
                    r.sessions,
                    r.core_seconds.as_str(),
                    r.gib_seconds.as_str(),
                    r.gpu_seconds.as_str(),
                    r.gpu_share_seconds.as_str(),
                )
            })
            .collect();
        assert_eq!(
            rows,
            [
                ("2026-01-10", "bob", 1, "5400", "1800", "3600", "1080"),
                ("2026-01-11", "alice", 1, "15", "5", "10", "3"),
                ("2026-01-11", "bob", 1, "5400", "1800", "3600", "1080"),
            ]
        );
        let totals: Vec<_> = r
            .totals
            .iter()
            .map(|t| {
                (
                    t.name.as_deref().unwrap(),
                    t.sessions,
                    t.core_seconds.as_str(),
                    t.gpu_seconds.as_str(),
                )
            })
            .collect();
        assert_eq!(
            totals,
            [("alice", 1, "15", "10"), ("bob", 1, "10800", "7200")]
        );
        assert_eq!(r.from, "2026-01-10");
        assert_eq!(r.group_by, UsageGroupBy::User);
    }
}
