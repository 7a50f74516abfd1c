//! Exact resource arithmetic. CPU is counted in millicores, memory in bytes and fractional
//! GPUs in quanta of 0.01 device, all as integers: no floating point ever touches an
//! allocation, so 0.3 × 3 is exactly 0.9.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;

/// The largest CPU request accepted at all (cores); larger is "absurd", not merely unschedulable.
pub const MAX_CPU_CORES: u64 = 4096;
/// The largest memory request accepted at all: 64 TiB.
pub const MAX_MEM_BYTES: u64 = 64 << 40;
/// Docker refuses memory limits below 6 MiB; berth asks for a little more.
pub const MIN_MEM_BYTES: u64 = 16 << 20;
pub const MAX_GPUS: u32 = 64;

/// CPU in thousandths of a core.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Millicores(pub u64);

/// Memory in bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Bytes(pub u64);

/// Fractional GPU in hundredths of a device.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Shares(pub u32);

/// Parses a non-negative decimal with at most `scale_digits` fractional digits into an
/// integer count of `10^-scale_digits` units. Returns `None` for anything else, including a
/// finer fraction than the scale allows.
fn parse_fixed(s: &str, scale_digits: u32) -> Option<u64> {
    let s = s.trim();
    if s.is_empty() || s.len() > 32 {
        return None;
    }
    let (int, frac) = match s.split_once('.') {
        Some((i, f)) => (i, f),
        None => (s, ""),
    };
    if int.is_empty() && frac.is_empty() {
        return None;
    }
    if !int.bytes().all(|b| b.is_ascii_digit()) || !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let frac_trimmed = frac.trim_end_matches('0');
    if frac_trimmed.len() > scale_digits as usize {
        return None;
    }
    let scale = 10u64.pow(scale_digits);
    let int_val: u64 = if int.is_empty() { 0 } else { int.parse().ok()? };
    let mut frac_val: u64 = 0;
    for (i, b) in frac_trimmed.bytes().enumerate() {
        frac_val += u64::from(b - b'0') * 10u64.pow(scale_digits - 1 - i as u32);
    }
    int_val.checked_mul(scale)?.checked_add(frac_val)
}

fn format_fixed(v: u64, scale_digits: u32) -> String {
    let scale = 10u64.pow(scale_digits);
    let int = v / scale;
    let frac = v % scale;
    if frac == 0 {
        return int.to_string();
    }
    let f = format!("{:0width$}", frac, width = scale_digits as usize);
    format!("{}.{}", int, f.trim_end_matches('0'))
}

impl Millicores {
    /// Parses `"1.5"`, `"250m"` or `"2"`. Zero, negative and finer than 1m are refused.
    pub fn parse(s: &str) -> Result<Self, String> {
        let v = Self::parse_amount(s)?.0;
        if v == 0 {
            return Err("CPU must be more than zero.".into());
        }
        if v > MAX_CPU_CORES * 1000 {
            return Err(format!(
                "CPU {s} is too large: at most {MAX_CPU_CORES} cores."
            ));
        }
        Ok(Self(v))
    }

    /// Parses the form alone (`"1.5"`, `"250m"`, `"0"`): zero and any size are accepted.
    /// This is how a reported amount (a node's free CPU, say) is read back; requests go
    /// through [`Millicores::parse`].
    pub fn parse_amount(s: &str) -> Result<Self, String> {
        let t = s.trim();
        let v = if let Some(m) = t.strip_suffix('m') {
            if m.is_empty() || !m.bytes().all(|b| b.is_ascii_digit()) || m.len() > 12 {
                None
            } else {
                m.parse::<u64>().ok()
            }
        } else {
            parse_fixed(t, 3)
        };
        v.map(Self).ok_or_else(|| {
            format!(
                "CPU \"{s}\" is not a number of cores: write e.g. \"1\", \"0.5\" or \"250m\" (at most 3 decimals)."
            )
        })
    }

    /// The amount in cores as a decimal string (`"1.5"`, `"0.25"`, `"2"`).
    pub fn cores_string(self) -> String {
        format_fixed(self.0, 3)
    }

    /// Docker's `NanoCpus` for this amount.
    pub fn nano_cpus(self) -> i64 {
        (self.0 as i64) * 1_000_000
    }
}

impl fmt::Display for Millicores {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.cores_string())
    }
}

impl Bytes {
    /// Parses a byte count: digits, optionally with a binary suffix `k`/`m`/`g`/`t`
    /// (any case, optionally followed by `i`, `ib`, or `b`): `"512m"`, `"2GiB"`, `"1073741824"`.
    /// Memory for a session: a size of at least 16 MiB.
    pub fn parse(s: &str) -> Result<Self, String> {
        let v = Self::parse_size(s, "Memory")?;
        if v.0 < MIN_MEM_BYTES {
            return Err(format!("Memory {s} is too small: at least 16 MiB."));
        }
        Ok(v)
    }

    /// Any size of more than zero and at most 64 TiB; `what` names it in the error sentences.
    pub fn parse_size(s: &str, what: &str) -> Result<Self, String> {
        let v = Self::parse_amount(s, what)?.0;
        if v == 0 {
            return Err(format!("{what} must be more than zero."));
        }
        if v > MAX_MEM_BYTES {
            return Err(format!("{what} {s} is too large: at most 64 TiB."));
        }
        Ok(Self(v))
    }

    /// Parses the form alone (bytes, or a number with a binary suffix): zero and any size up
    /// to `u64::MAX` are accepted. This is how a reported amount is read back; requests go
    /// through [`Bytes::parse`] or [`Bytes::parse_size`].
    pub fn parse_amount(s: &str, what: &str) -> Result<Self, String> {
        let bad = || {
            format!(
                "{what} \"{s}\" is not a size: write bytes or a number with a k, m, g or t suffix, e.g. \"512m\" or \"2GiB\"."
            )
        };
        let t = s.trim().to_ascii_lowercase();
        let digits_end = t
            .find(|c: char| !c.is_ascii_digit() && c != '.')
            .unwrap_or(t.len());
        let (num, suffix) = t.split_at(digits_end);
        let shift = match suffix.trim() {
            "" | "b" => 0,
            "k" | "ki" | "kib" | "kb" => 10,
            "m" | "mi" | "mib" | "mb" => 20,
            "g" | "gi" | "gib" | "gb" => 30,
            "t" | "ti" | "tib" | "tb" => 40,
            _ => return Err(bad()),
        };
        if !num.is_empty() && num.len() <= 20 && num.bytes().all(|b| b.is_ascii_digit()) {
            // Whole numbers directly: every u64 byte count reads back.
            let v = num.parse::<u128>().map_err(|_| bad())? << shift;
            return u64::try_from(v)
                .map(Self)
                .map_err(|_| format!("{what} {s} is too large."));
        }
        // Fractions are allowed with a suffix ("1.5g") as long as the result is whole bytes.
        let fixed = parse_fixed(num, 6).ok_or_else(bad)?;
        let scaled = (fixed as u128) << shift;
        if !scaled.is_multiple_of(1_000_000) {
            return Err(format!("{what} \"{s}\" is not a whole number of bytes."));
        }
        u64::try_from(scaled / 1_000_000)
            .map(Self)
            .map_err(|_| format!("{what} {s} is too large."))
    }

    /// A short human form: `1 GiB`, `512 MiB`, `1.5 GiB`.
    pub fn human(self) -> String {
        let units = [(40, "TiB"), (30, "GiB"), (20, "MiB"), (10, "KiB")];
        for (shift, unit) in units {
            let base = 1u64 << shift;
            if self.0 >= base {
                let tenths = (self.0 as u128 * 10 / base as u128) as u64;
                return if tenths.is_multiple_of(10) {
                    format!("{} {unit}", tenths / 10)
                } else {
                    format!("{}.{} {unit}", tenths / 10, tenths % 10)
                };
            }
        }
        format!("{} B", self.0)
    }
}

impl Shares {
    /// Parses a request's GPU shares: a decimal in steps of 0.01, at most [`MAX_GPUS`].
    pub fn parse(s: &str) -> Result<Self, String> {
        let v = Self::parse_amount(s)?;
        if v.0 > MAX_GPUS * 100 {
            return Err(format!("GPU shares {s} are too many: at most {MAX_GPUS}."));
        }
        Ok(v)
    }

    /// Parses the form alone (a decimal in steps of 0.01), any amount that fits: how a
    /// reported amount is read back.
    pub fn parse_amount(s: &str) -> Result<Self, String> {
        parse_fixed(s, 2)
            .and_then(|v| u32::try_from(v).ok())
            .map(Self)
            .ok_or_else(|| {
                format!("GPU shares \"{s}\" must be a decimal in steps of 0.01, e.g. \"0.3\".")
            })
    }
}

impl fmt::Display for Shares {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&format_fixed(u64::from(self.0), 2))
    }
}

/// Resources after validation: what a session asks for and what a node has.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Resources {
    pub cpu: Millicores,
    pub mem: Bytes,
    pub gpu: u32,
    pub gpu_shares: Shares,
}

impl Resources {
    /// True when every slot of `self` fits in `other`.
    pub fn fits_in(&self, other: &Resources) -> bool {
        self.cpu <= other.cpu
            && self.mem <= other.mem
            && self.gpu <= other.gpu
            && self.gpu_shares <= other.gpu_shares
    }

    pub fn saturating_sub(&self, o: &Resources) -> Resources {
        Resources {
            cpu: Millicores(self.cpu.0.saturating_sub(o.cpu.0)),
            mem: Bytes(self.mem.0.saturating_sub(o.mem.0)),
            gpu: self.gpu.saturating_sub(o.gpu),
            gpu_shares: Shares(self.gpu_shares.0.saturating_sub(o.gpu_shares.0)),
        }
    }

    pub fn add(&self, o: &Resources) -> Resources {
        Resources {
            cpu: Millicores(self.cpu.0 + o.cpu.0),
            mem: Bytes(self.mem.0 + o.mem.0),
            gpu: self.gpu + o.gpu,
            gpu_shares: Shares(self.gpu_shares.0 + o.gpu_shares.0),
        }
    }

    /// A readable one-liner: `1 CPU, 1 GiB`.
    pub fn summary(&self) -> String {
        let mut s = format!("{} CPU, {}", self.cpu, self.mem.human());
        if self.gpu > 0 {
            s.push_str(&format!(", {} GPU", self.gpu));
        }
        if self.gpu_shares.0 > 0 {
            s.push_str(&format!(", {} GPU shares", self.gpu_shares));
        }
        s
    }
}

/// Wire form of resources: decimal strings for `cpu` and `gpu_shares`, an integer for `mem`.
impl Serialize for Resources {
    fn serialize<S: Serializer>(&self, ser: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let mut st = ser.serialize_struct("Resources", 4)?;
        st.serialize_field("cpu", &self.cpu.cores_string())?;
        st.serialize_field("mem", &self.mem.0)?;
        st.serialize_field("gpu", &self.gpu)?;
        st.serialize_field("gpu_shares", &self.gpu_shares.to_string())?;
        st.end()
    }
}

/// Decodes resources as the server reports them (a session's, a node's capacity and
/// allocation, a policy's total, an image's minimum): the exact wire form, where zero is a
/// valid amount (an idle node holds nothing). Decoding never applies the request rules; what
/// a client asks for arrives as a [`ResourcesRequest`] and passes
/// [`ResourcesRequest::validate`].
impl<'de> Deserialize<'de> for Resources {
    fn deserialize<D: Deserializer<'de>>(de: D) -> Result<Self, D::Error> {
        let req = ResourcesRequest::deserialize(de)?;
        req.reported().map_err(|errs| {
            serde::de::Error::custom(
                errs.into_iter()
                    .map(|e| e.message)
                    .collect::<Vec<_>>()
                    .join(" "),
            )
        })
    }
}

/// A number or a string on the wire; kept as text so parsing stays exact.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NumText(pub String);

impl<'de> Deserialize<'de> for NumText {
    fn deserialize<D: Deserializer<'de>>(de: D) -> Result<Self, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = NumText;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a number or a string")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<NumText, E> {
                Ok(NumText(v.to_string()))
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<NumText, E> {
                Ok(NumText(v.to_string()))
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<NumText, E> {
                Ok(NumText(v.to_string()))
            }
            fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<NumText, E> {
                if !v.is_finite() {
                    return Err(E::custom("not a finite number"));
                }
                Ok(NumText(format!("{v}")))
            }
        }
        de.deserialize_any(V)
    }
}

impl Serialize for NumText {
    fn serialize<S: Serializer>(&self, ser: S) -> Result<S::Ok, S::Error> {
        ser.serialize_str(&self.0)
    }
}

/// Resources as a client sends them, before validation.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct ResourcesRequest {
    pub cpu: Option<NumText>,
    pub mem: Option<NumText>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gpu: Option<NumText>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gpu_shares: Option<NumText>,
}

impl ResourcesRequest {
    pub fn new(cpu: &str, mem: &str) -> Self {
        Self {
            cpu: Some(NumText(cpu.into())),
            mem: Some(NumText(mem.into())),
            gpu: None,
            gpu_shares: None,
        }
    }

    /// Reads resources the server reported: `cpu` and `mem` present, every amount in its
    /// exact form, zero allowed, none of the request limits. Errors name the field like
    /// [`ResourcesRequest::validate`]'s.
    pub fn reported(&self) -> Result<Resources, Vec<crate::FieldError>> {
        use crate::FieldError;
        let mut errs = Vec::new();
        let mut out = Resources::default();
        match &self.cpu {
            None => errs.push(FieldError::new("resources.cpu", "CPU is missing.")),
            Some(t) => match Millicores::parse_amount(&t.0) {
                Ok(v) => out.cpu = v,
                Err(m) => errs.push(FieldError::new("resources.cpu", m)),
            },
        }
        match &self.mem {
            None => errs.push(FieldError::new("resources.mem", "Memory is missing.")),
            Some(t) => match Bytes::parse_amount(&t.0, "Memory") {
                Ok(v) => out.mem = v,
                Err(m) => errs.push(FieldError::new("resources.mem", m)),
            },
        }
        if let Some(t) = &self.gpu {
            match t.0.trim().parse::<u32>() {
                Ok(v) => out.gpu = v,
                Err(_) => errs.push(FieldError::new(
                    "resources.gpu",
                    format!("GPU count \"{}\" must be a whole number of devices.", t.0),
                )),
            }
        }
        if let Some(t) = &self.gpu_shares {
            match Shares::parse_amount(&t.0) {
                Ok(v) => out.gpu_shares = v,
                Err(m) => errs.push(FieldError::new("resources.gpu_shares", m)),
            }
        }
        if errs.is_empty() {
            Ok(out)
        } else {
            Err(errs)
        }
    }

    /// Checks every field of a request and returns the exact resources, or one error per bad
    /// field (field names are prefixed `resources.`): zero, negative, unparsable, finer or
    /// absurd amounts are refused.
    pub fn validate(&self) -> Result<Resources, Vec<crate::FieldError>> {
        use crate::FieldError;
        let mut errs = Vec::new();
        let mut out = Resources::default();
        match &self.cpu {
            None => errs.push(FieldError::new(
                "resources.cpu",
                "CPU is required, e.g. \"1\" or \"500m\".",
            )),
            Some(t) => match Millicores::parse(&t.0) {
                Ok(v) => out.cpu = v,
                Err(m) => errs.push(FieldError::new("resources.cpu", m)),
            },
        }
        match &self.mem {
            None => errs.push(FieldError::new(
                "resources.mem",
                "Memory is required, e.g. \"1g\" or \"512m\".",
            )),
            Some(t) => match Bytes::parse(&t.0) {
                Ok(v) => out.mem = v,
                Err(m) => errs.push(FieldError::new("resources.mem", m)),
            },
        }
        if let Some(t) = &self.gpu {
            match t.0.trim().parse::<u32>() {
                Ok(v) if v <= MAX_GPUS => out.gpu = v,
                Ok(_) => errs.push(FieldError::new(
                    "resources.gpu",
                    format!("GPU count is too large: at most {MAX_GPUS}."),
                )),
                Err(_) => errs.push(FieldError::new(
                    "resources.gpu",
                    format!("GPU count \"{}\" must be a whole number of devices.", t.0),
                )),
            }
        }
        if let Some(t) = &self.gpu_shares {
            match Shares::parse(&t.0) {
                Ok(v) => out.gpu_shares = v,
                Err(m) => errs.push(FieldError::new("resources.gpu_shares", m)),
            }
        }
        if out.gpu > 0 && out.gpu_shares.0 > 0 {
            errs.push(FieldError::new(
                "resources.gpu_shares",
                "Ask for whole GPUs or GPU shares, not both.",
            ));
        }
        if errs.is_empty() {
            Ok(out)
        } else {
            Err(errs)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_forms() {
        assert_eq!(Millicores::parse("1.5").unwrap(), Millicores(1500));
        assert_eq!(Millicores::parse("250m").unwrap(), Millicores(250));
        assert_eq!(Millicores::parse("2").unwrap(), Millicores(2000));
        assert_eq!(Millicores::parse(".5").unwrap(), Millicores(500));
        assert_eq!(Millicores::parse("0.100").unwrap(), Millicores(100));
        for bad in [
            "0", "-1", "0.0001", "abc", "", "1e3", "m", "1.5m", "nan", "99999999",
        ] {
            assert!(Millicores::parse(bad).is_err(), "{bad} should be refused");
        }
        assert_eq!(Millicores(1500).cores_string(), "1.5");
        assert_eq!(Millicores(100).cores_string(), "0.1");
        assert_eq!(Millicores(2000).cores_string(), "2");
    }

    #[test]
    fn mem_forms() {
        assert_eq!(Bytes::parse("512m").unwrap(), Bytes(512 << 20));
        assert_eq!(Bytes::parse("2GiB").unwrap(), Bytes(2 << 30));
        assert_eq!(Bytes::parse("1g").unwrap(), Bytes(1 << 30));
        assert_eq!(Bytes::parse("1.5G").unwrap(), Bytes(3 << 29));
        assert_eq!(Bytes::parse("1073741824").unwrap(), Bytes(1 << 30));
        for bad in ["0", "-5m", "1x", "", "1.1b", "100", "999t", "1e9", "g"] {
            assert!(Bytes::parse(bad).is_err(), "{bad} should be refused");
        }
        assert_eq!(Bytes(1 << 30).human(), "1 GiB");
        assert_eq!(Bytes(3 << 29).human(), "1.5 GiB");
    }

    #[test]
    fn shares_are_exact() {
        let s = Shares::parse("0.3").unwrap();
        assert_eq!(Shares(s.0 * 3).to_string(), "0.9");
        assert!(Shares::parse("0.001").is_err());
    }

    #[test]
    fn reports_decode_zero_and_requests_refuse_it() {
        let zero = r#"{"cpu":"0","mem":0,"gpu":0,"gpu_shares":"0"}"#;
        let r: Resources = serde_json::from_str(zero).unwrap();
        assert_eq!(r, Resources::default());
        assert_eq!(
            serde_json::to_value(r).unwrap(),
            serde_json::from_str::<serde_json::Value>(zero).unwrap()
        );
        let req: ResourcesRequest = serde_json::from_str(zero).unwrap();
        let fields: Vec<String> = req
            .validate()
            .unwrap_err()
            .into_iter()
            .map(|e| e.field)
            .collect();
        assert_eq!(fields, ["resources.cpu", "resources.mem"]);
        // A node with GPUs reports whole devices and their shares together, and amounts
        // beyond any one request's limits.
        let big = r#"{"cpu":"8192","mem":140737488355328,"gpu":80,"gpu_shares":"80"}"#;
        let r: Resources = serde_json::from_str(big).unwrap();
        assert_eq!(
            (r.cpu, r.mem, r.gpu, r.gpu_shares),
            (Millicores(8_192_000), Bytes(128 << 40), 80, Shares(8000))
        );
        let req: ResourcesRequest = serde_json::from_str(big).unwrap();
        assert_eq!(req.validate().unwrap_err().len(), 4);
        // Still exact: malformed or finer amounts do not decode.
        for bad in [
            r#"{"cpu":"0.0001","mem":0}"#,
            r#"{"cpu":"1","mem":-1}"#,
            r#"{"cpu":"1","mem":"lots"}"#,
            r#"{"cpu":"1","mem":1,"gpu_shares":"0.001"}"#,
            r#"{"mem":1}"#,
        ] {
            assert!(serde_json::from_str::<Resources>(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn request_from_json_numbers_and_strings() {
        let r: ResourcesRequest = serde_json::from_str(r#"{"cpu":0.5,"mem":"1g"}"#).unwrap();
        let v = r.validate().unwrap();
        assert_eq!(v.cpu, Millicores(500));
        assert_eq!(v.mem, Bytes(1 << 30));
        let json = serde_json::to_value(v).unwrap();
        assert_eq!(json["cpu"], "0.5");
        assert_eq!(json["mem"], 1u64 << 30);
        assert!(
            serde_json::from_str::<ResourcesRequest>(r#"{"cpu":1,"mem":"1g","disk":1}"#).is_err()
        );
        let r: ResourcesRequest = serde_json::from_str(r#"{"cpu":-1,"mem":"0"}"#).unwrap();
        assert_eq!(r.validate().unwrap_err().len(), 2);
    }
}
