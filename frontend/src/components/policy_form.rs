//! The resource-policy form: one row per setting, for the defaults (empty = unlimited) and for
//! a user's overrides (an "Override" checkbox per setting; unchecked = inherit the default).
//! What the form sends is checked first with `api::policy::parse_policy_map`, the parser the
//! gateway runs, so a bad value is refused here with the server's own sentence.

use ::api::policy::{parse_policy_map, Policy, KEYS};
use ::api::{Bytes, FieldError, Resources};
use leptos::prelude::*;
use serde_json::{Map, Value};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Count,
    Seconds,
    Bytes,
    Resources,
    Groups,
}

/// One policy setting as the form shows it.
#[derive(Debug, Clone, Copy)]
pub struct Setting {
    pub key: &'static str,
    pub label: &'static str,
    pub help: &'static str,
    pub kind: Kind,
}

/// In the order of [`KEYS`].
pub const SETTINGS: [Setting; 11] = [
    Setting {
        key: KEYS[0],
        label: "Concurrent sessions",
        help: "Sessions that may hold resources at once.",
        kind: Kind::Count,
    },
    Setting {
        key: KEYS[1],
        label: "Pending sessions",
        help: "Sessions that may wait in the queue.",
        kind: Kind::Count,
    },
    Setting {
        key: KEYS[2],
        label: "Total resources",
        help: "All live sessions together. Leave every box empty for unlimited.",
        kind: Kind::Resources,
    },
    Setting {
        key: KEYS[3],
        label: "Session lifetime",
        help: "Seconds from start until a session is ended.",
        kind: Kind::Seconds,
    },
    Setting {
        key: KEYS[4],
        label: "Idle timeout",
        help: "Seconds without terminal, app or tunnel traffic until a session is ended.",
        kind: Kind::Seconds,
    },
    Setting {
        key: KEYS[5],
        label: "Folders",
        help: "How many vfolders the user may own.",
        kind: Kind::Count,
    },
    Setting {
        key: KEYS[6],
        label: "Folder quota",
        help: "Bytes per folder, e.g. 10g or 500m.",
        kind: Kind::Bytes,
    },
    Setting {
        key: KEYS[7],
        label: "Node groups",
        help: "Comma-separated groups sessions may run in.",
        kind: Kind::Groups,
    },
    Setting {
        key: KEYS[8],
        label: "Processes",
        help: "Processes and threads per session (at least 32); keeps a fork bomb inside it.",
        kind: Kind::Count,
    },
    Setting {
        key: KEYS[9],
        label: "Idle below CPU %",
        help: "With an idle timeout: a session whose CPU stays under this percent of its allocation for the timeout is idle too (1–100).",
        kind: Kind::Count,
    },
    Setting {
        key: KEYS[10],
        label: "Home quota",
        help: "Size of each user's home folder (/home/work in their sessions), e.g. 10g.",
        kind: Kind::Bytes,
    },
];

/// The form's state: the text of every input, and for a user's policy which settings the
/// user overrides. Copy, like the signals it holds.
#[derive(Clone, Copy)]
pub struct PolicyForm {
    text: [RwSignal<String>; 11],
    /// The total-resources boxes: CPU, memory, GPUs, GPU shares.
    res: [RwSignal<String>; 4],
    pub overridden: [RwSignal<bool>; 11],
}

impl Default for PolicyForm {
    fn default() -> Self {
        Self::new()
    }
}

impl PolicyForm {
    pub fn new() -> Self {
        Self {
            text: std::array::from_fn(|_| RwSignal::new(String::new())),
            res: std::array::from_fn(|_| RwSignal::new(String::new())),
            overridden: std::array::from_fn(|_| RwSignal::new(false)),
        }
    }

    /// Shows `p` in every input; `overridden` (a user's policy) also sets the checkboxes.
    pub fn fill(&self, p: &Policy, overridden: Option<&[String]>) {
        for (i, s) in SETTINGS.iter().enumerate() {
            self.fill_one(i, p);
            if let Some(o) = overridden {
                self.overridden[i].set(o.iter().any(|k| k == s.key));
            }
        }
    }

    /// Shows setting `i` of `p`.
    pub fn fill_one(&self, i: usize, p: &Policy) {
        let n = |v: Option<u64>| v.map(|x| x.to_string()).unwrap_or_default();
        match SETTINGS[i].key {
            "max_concurrent_sessions" => self.text[i].set(n(p.max_concurrent_sessions)),
            "max_pending_sessions" => self.text[i].set(n(p.max_pending_sessions)),
            "max_session_lifetime_s" => self.text[i].set(n(p.max_session_lifetime_s)),
            "idle_timeout_s" => self.text[i].set(n(p.idle_timeout_s)),
            "max_vfolders" => self.text[i].set(n(p.max_vfolders)),
            "max_processes" => self.text[i].set(n(p.max_processes)),
            "idle_cpu_percent" => self.text[i].set(n(p.idle_cpu_percent)),
            "vfolder_quota_bytes" => {
                self.text[i].set(p.vfolder_quota_bytes.map(compact_bytes).unwrap_or_default())
            }
            "home_quota_bytes" => {
                self.text[i].set(p.home_quota_bytes.map(compact_bytes).unwrap_or_default())
            }
            "allowed_node_groups" => self.text[i].set(
                p.allowed_node_groups
                    .as_ref()
                    .map(|g| g.join(", "))
                    .unwrap_or_default(),
            ),
            "max_total_resources" => {
                let r = p.max_total_resources;
                let [cpu, mem, gpu, shares] = self.res;
                cpu.set(r.map(|r| r.cpu.cores_string()).unwrap_or_default());
                mem.set(r.map(|r| compact_bytes(r.mem.0)).unwrap_or_default());
                gpu.set(
                    r.filter(|r| r.gpu > 0)
                        .map(|r| r.gpu.to_string())
                        .unwrap_or_default(),
                );
                shares.set(
                    r.filter(|r| r.gpu_shares.0 > 0)
                        .map(|r| r.gpu_shares.to_string())
                        .unwrap_or_default(),
                );
            }
            _ => {}
        }
    }

    /// Setting `i` as JSON, before validation: empty inputs are `null` (unlimited).
    fn raw(&self, i: usize) -> Value {
        let text = |s: RwSignal<String>| s.get().trim().to_string();
        match SETTINGS[i].kind {
            Kind::Count | Kind::Seconds | Kind::Bytes => {
                let t = text(self.text[i]);
                if t.is_empty() {
                    Value::Null
                } else {
                    Value::String(t)
                }
            }
            Kind::Groups => {
                let groups: Vec<Value> = text(self.text[i])
                    .split(',')
                    .map(str::trim)
                    .filter(|g| !g.is_empty())
                    .map(|g| Value::String(g.to_string()))
                    .collect();
                if groups.is_empty() {
                    Value::Null
                } else {
                    Value::Array(groups)
                }
            }
            Kind::Resources => {
                let mut obj = Map::new();
                for (name, s) in ["cpu", "mem", "gpu", "gpu_shares"]
                    .into_iter()
                    .zip(self.res)
                {
                    let t = text(s);
                    if !t.is_empty() {
                        obj.insert(name.into(), Value::String(t));
                    }
                }
                if obj.is_empty() {
                    Value::Null
                } else {
                    Value::Object(obj)
                }
            }
        }
    }

    /// The whole policy (`all`), or only the overridden settings, checked and normalised.
    pub fn check(&self, all: bool) -> Result<Map<String, Value>, Vec<FieldError>> {
        let mut raw = Map::new();
        for (i, s) in SETTINGS.iter().enumerate() {
            if all || self.overridden[i].get() {
                raw.insert(s.key.to_string(), self.raw(i));
            }
        }
        parse_policy_map(&raw)
    }

    /// What setting `i` currently says, in words, or `None` while it does not parse.
    fn reading(&self, i: usize) -> Option<String> {
        let s = SETTINGS[i];
        let mut one = Map::new();
        one.insert(s.key.to_string(), self.raw(i));
        let parsed = parse_policy_map(&one).ok()?;
        parsed.get(s.key).map(|v| in_words(s.kind, v))
    }
}

/// `10737418240` → `10g`; sizes under 16 MiB stay in bytes (the parser wants at least that
/// with a suffix).
pub fn compact_bytes(b: u64) -> String {
    if b < 16 << 20 {
        return b.to_string();
    }
    for (shift, suffix) in [(40, "t"), (30, "g"), (20, "m"), (10, "k")] {
        if b.is_multiple_of(1u64 << shift) {
            return format!("{}{suffix}", b >> shift);
        }
    }
    b.to_string()
}

/// `9000` → `2 h 30 min`.
pub fn duration(secs: u64) -> String {
    if secs == 0 {
        return "0 s".into();
    }
    let parts = [
        (secs / 86_400, "d"),
        (secs % 86_400 / 3_600, "h"),
        (secs % 3_600 / 60, "min"),
        (secs % 60, "s"),
    ];
    parts
        .into_iter()
        .skip_while(|(n, _)| *n == 0)
        .take(2)
        .filter(|(n, _)| *n > 0)
        .map(|(n, u)| format!("{n} {u}"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// A normalised policy value in words: `unlimited`, `2 h`, `10 GiB`, `4 CPU, 8 GiB`.
pub fn in_words(kind: Kind, v: &Value) -> String {
    if v.is_null() {
        return "unlimited".into();
    }
    match kind {
        Kind::Count => v.to_string(),
        Kind::Seconds => v.as_u64().map(duration).unwrap_or_else(|| v.to_string()),
        Kind::Bytes => v
            .as_u64()
            .map(|b| Bytes(b).human())
            .unwrap_or_else(|| v.to_string()),
        Kind::Resources => serde_json::from_value::<Resources>(v.clone())
            .map(|r| r.summary())
            .unwrap_or_else(|_| v.to_string()),
        Kind::Groups => v
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(Value::as_str)
                    .collect::<Vec<_>>()
                    .join(", ")
            })
            .unwrap_or_else(|| v.to_string()),
    }
}

/// Setting `i` of a policy, in words.
pub fn setting_in_words(p: &Policy, i: usize) -> String {
    let v = serde_json::to_value(p)
        .ok()
        .and_then(|m| m.get(SETTINGS[i].key).cloned())
        .unwrap_or(Value::Null);
    in_words(SETTINGS[i].kind, &v)
}

/// The rows of the form. With `defaults` (a user's policy) each row gets an "Override"
/// checkbox, its inputs are read-only while the setting is inherited, and the default is
/// shown beside it.
#[component]
pub fn PolicyFields(
    form: PolicyForm,
    /// Prefix of the inputs' ids (`policy-default`, `policy-user`).
    id_prefix: &'static str,
    #[prop(into)] errors: Signal<Vec<FieldError>>,
    #[prop(optional, into)] defaults: Option<Signal<Option<Policy>>>,
) -> impl IntoView {
    let user_mode = defaults.is_some();
    let rows = SETTINGS
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let s = *s;
            let on = form.overridden[i];
            let editable = move || !user_mode || on.get();
            let input_id = format!("{id_prefix}-{}", s.key);
            let error = move || {
                errors
                    .get()
                    .into_iter()
                    .find(|e| e.field == s.key)
                    .map(|e| view! { <span class="field-error">{e.message}</span> })
            };
            let reading = move || {
                if !editable() {
                    return None;
                }
                let words = form.reading(i)?;
                // The reading helps only when it says more than the box does.
                let boxed = form.text[i].get();
                (words != boxed.trim() && !(words == "unlimited" && boxed.trim().is_empty()))
                    .then(|| view! { <span class="reading">{format!("= {words}")}</span> })
            };
            let inputs = if s.kind == Kind::Resources {
                let [cpu, mem, gpu, shares] = form.res;
                let boxes = [
                    (cpu, "cpu", "CPU", "Cores, e.g. 4 or 500m", "e.g. 4"),
                    (mem, "mem", "Memory", "Bytes, e.g. 8g or 512m", "e.g. 8g"),
                    (gpu, "gpu", "GPUs", "Whole GPU devices", "0"),
                    (
                        shares,
                        "gpu_shares",
                        "Shares",
                        "GPU shares: fractions of a GPU in steps of 0.01",
                        "0",
                    ),
                ];
                view! {
                    <div class="res-inputs">
                        {boxes.into_iter().map(|(sig, name, label, title, ph)| {
                            let id = format!("{input_id}-{name}");
                            view! {
                                <label class="mini" title=title>
                                    {label}
                                    <input id=id type="text"
                                        placeholder=move || if editable() { ph } else { "" }
                                        disabled=move || !editable()
                                        prop:value=move || sig.get()
                                        on:input=move |ev| sig.set(event_target_value(&ev)) />
                                </label>
                            }
                        }).collect_view()}
                    </div>
                }
                .into_any()
            } else {
                let sig = form.text[i];
                let mode = if s.kind == Kind::Groups {
                    "text"
                } else {
                    "decimal"
                };
                view! {
                    <input id=input_id.clone() type="text" inputmode=mode placeholder="unlimited"
                        disabled=move || !editable()
                        prop:value=move || sig.get()
                        on:input=move |ev| sig.set(event_target_value(&ev)) />
                }
                .into_any()
            };
            let toggle = defaults.map(|defaults| {
                let check_id = format!("{id_prefix}-{}-override", s.key);
                view! {
                    <label class="check">
                        <input id=check_id type="checkbox"
                            prop:checked=move || on.get()
                            on:change=move |ev| {
                                let checked = event_target_checked(&ev);
                                on.set(checked);
                                if !checked {
                                    if let Some(d) = defaults.get_untracked() {
                                        form.fill_one(i, &d);
                                    }
                                }
                            } />
                        "Override"
                    </label>
                }
            });
            let default_note = defaults.map(|defaults| {
                move || {
                    defaults.get().map(|d| {
                        let words = setting_in_words(&d, i);
                        if on.get() {
                            format!("Default: {words}")
                        } else {
                            format!("Inherited from the defaults: {words}")
                        }
                    })
                }
            });
            view! {
                <div class="policy-row" class:inherited=move || user_mode && !on.get()
                    class:overridden=move || user_mode && on.get() data-key=s.key>
                    <div class="policy-label">
                        <span class="name">{s.label}</span>
                        <span class="help">{s.help}</span>
                    </div>
                    {toggle}
                    <div class="policy-value">
                        {inputs}
                        <div class="policy-notes">
                            {reading}
                            {default_note.map(|n| view! { <span class="muted">{n}</span> })}
                            {error}
                        </div>
                    </div>
                </div>
            }
        })
        .collect_view();
    view! { <div class="policy-fields" class:user-mode=user_mode>{rows}</div> }
}
