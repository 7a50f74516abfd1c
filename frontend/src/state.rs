//! What the logged-in frame shares with the pages and components below it, as Leptos
//! contexts: the live session store and the current route. The shell provides them; pages
//! and components only read them, so nothing below the shell imports it.

use crate::{api, Route};
use ::api::session::Session;
use ::api::stats::{StatsSample, HISTORY_MS, SAMPLE_INTERVAL_MS};
use leptos::prelude::*;
use std::collections::{HashMap, VecDeque};
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;

/// Every session the user can see, kept current by server-sent events.
///
/// Every change of a session is published as an event, so while the stream is live the
/// events alone bring each session to its latest state. An answer to a request (a refresh,
/// a launch, a terminate) may be older than an event that arrived while it travelled, so it
/// replaces a session only if no event about that session arrived since the request was sent
/// ([`Sessions::mark`] before sending, [`Sessions::answer`] after).
#[derive(Clone, Copy)]
pub struct Sessions {
    pub list: RwSignal<Vec<Session>>,
    pub loaded: RwSignal<bool>,
    pub error: RwSignal<Option<String>>,
    /// False while the live connection is down (the page says so).
    pub live: RwSignal<bool>,
    /// Events counted, and the count at the latest event about each session.
    events: StoredValue<(u64, HashMap<String, u64>)>,
}

impl Sessions {
    /// An empty store, not yet loaded, assumed live until the event stream says otherwise.
    pub fn new() -> Self {
        Self {
            list: RwSignal::new(Vec::new()),
            loaded: RwSignal::new(false),
            error: RwSignal::new(None),
            live: RwSignal::new(true),
            events: StoredValue::new((0, HashMap::new())),
        }
    }

    /// Where the event stream stands; take it before sending a request whose answer carries
    /// sessions, and hand it to [`Sessions::answer`].
    pub fn mark(&self) -> u64 {
        self.events.with_value(|(n, _)| *n)
    }

    /// Whether an event about session `id` arrived after `mark`.
    fn newer_than(&self, id: &str, mark: u64) -> bool {
        self.events
            .with_value(|(_, last)| last.get(id).is_some_and(|&at| at > mark))
    }

    fn put(&self, s: Session) {
        self.list
            .update(|v| match v.iter_mut().find(|x| x.id == s.id) {
                Some(x) => *x = s,
                None => v.insert(0, s),
            });
    }

    /// A session as an event brought it: always the newest copy.
    pub fn event(&self, s: Session) {
        self.events.update_value(|(n, last)| {
            *n += 1;
            last.insert(s.id.clone(), *n);
        });
        self.put(s);
    }

    /// A session as the answer to a request sent at `mark`: kept unless an event about it
    /// arrived meanwhile (that copy is at least as new).
    pub fn answer(&self, s: Session, mark: u64) {
        if !self.newer_than(&s.id, mark) {
            self.put(s);
        }
    }

    /// Reloads the whole list; sessions an event updated while it loaded keep that copy.
    pub fn refresh(self) {
        let mark = self.mark();
        leptos::task::spawn_local(async move {
            match api::get::<Vec<Session>>("/api/v1/sessions").await {
                Ok(answer) => {
                    let newer = |id: &str| self.newer_than(id, mark);
                    self.list.update(|now| {
                        // Ones the answer does not have yet but an event brought, then the rest.
                        let mut out: Vec<Session> = now
                            .iter()
                            .filter(|s| newer(&s.id) && !answer.iter().any(|a| a.id == s.id))
                            .cloned()
                            .collect();
                        for s in answer {
                            match now.iter().find(|n| n.id == s.id && newer(&n.id)) {
                                Some(kept) => out.push(kept.clone()),
                                None => out.push(s),
                            }
                        }
                        *now = out;
                    });
                    self.error.set(None);
                }
                Err(e) => self.error.set(Some(e.detail)),
            }
            self.loaded.set(true);
        });
    }
}

/// Live stats of running sessions, fed by `stats` events (and a session page's first
/// `GET /sessions/{id}/stats`). Bounded like the server's rings: at most 15 minutes per
/// session, and a session's samples go when it stops running.
#[derive(Clone, Copy)]
pub struct LiveStats {
    by_session: RwSignal<HashMap<String, VecDeque<StatsSample>>>,
}

/// The policy endings the owner was warned of (`ending` events), by session.
#[derive(Clone, Copy)]
pub struct Endings(pub RwSignal<HashMap<String, ::api::events::SessionEnding>>);

impl Endings {
    pub fn new() -> Self {
        Self(RwSignal::new(HashMap::new()))
    }

    fn event(&self, e: ::api::events::SessionEnding) {
        self.0.update(|m| {
            if e.ends_at.is_some() {
                m.insert(e.session.clone(), e);
            } else {
                m.remove(&e.session);
            }
        });
    }
}

/// Samples kept per session.
const KEPT: usize = (HISTORY_MS / SAMPLE_INTERVAL_MS) as usize;

impl LiveStats {
    pub fn new() -> Self {
        Self {
            by_session: RwSignal::new(HashMap::new()),
        }
    }

    /// Adds samples (in any order; ones already held are skipped).
    pub fn add(&self, samples: impl IntoIterator<Item = StatsSample>) {
        self.by_session.update(|m| {
            for s in samples {
                let ring = m.entry(s.session.clone()).or_default();
                if ring.iter().any(|x| x.at_ms == s.at_ms) {
                    continue;
                }
                let at = ring.partition_point(|x| x.at_ms < s.at_ms);
                ring.insert(at, s);
                while ring.len() > KEPT {
                    ring.pop_front();
                }
            }
        });
    }

    /// Forgets a session's samples (it stopped running).
    pub fn forget(&self, id: &str) {
        if self.by_session.with_untracked(|m| m.contains_key(id)) {
            self.by_session.update(|m| {
                m.remove(id);
            });
        }
    }

    /// A session's samples, oldest first (tracked).
    pub fn samples(&self, id: &str) -> Vec<StatsSample> {
        self.by_session.with(|m| {
            m.get(id)
                .map(|r| r.iter().cloned().collect())
                .unwrap_or_default()
        })
    }

    /// A session's newest sample (tracked).
    pub fn latest(&self, id: &str) -> Option<StatsSample> {
        self.by_session
            .with(|m| m.get(id).and_then(|r| r.back().cloned()))
    }
}

/// Feeds `store` from `/api/v1/events` (session events) and `stats` from `stats` events,
/// refreshing the store after every (re)connect; the caller closes the returned stream when
/// the shell goes away.
pub fn subscribe(
    store: Sessions,
    stats: LiveStats,
    endings: Endings,
) -> Option<web_sys::EventSource> {
    let es = web_sys::EventSource::new("/api/v1/events").ok()?;
    let on_session =
        Closure::<dyn FnMut(web_sys::MessageEvent)>::new(move |ev: web_sys::MessageEvent| {
            if let Some(text) = ev.data().as_string() {
                if let Ok(s) = serde_json::from_str::<Session>(&text) {
                    if s.status != ::api::session::SessionStatus::Running {
                        stats.forget(&s.id);
                        endings.0.update(|m| {
                            m.remove(&s.id);
                        });
                    }
                    store.event(s);
                }
            }
        });
    let _ = es.add_event_listener_with_callback("session", on_session.as_ref().unchecked_ref());
    on_session.forget();
    let on_stats =
        Closure::<dyn FnMut(web_sys::MessageEvent)>::new(move |ev: web_sys::MessageEvent| {
            if let Some(text) = ev.data().as_string() {
                if let Ok(s) = serde_json::from_str::<StatsSample>(&text) {
                    stats.add([s]);
                }
            }
        });
    let _ = es.add_event_listener_with_callback("stats", on_stats.as_ref().unchecked_ref());
    on_stats.forget();
    let on_ending =
        Closure::<dyn FnMut(web_sys::MessageEvent)>::new(move |ev: web_sys::MessageEvent| {
            if let Some(text) = ev.data().as_string() {
                if let Ok(e) = serde_json::from_str(&text) {
                    endings.event(e);
                }
            }
        });
    let _ = es.add_event_listener_with_callback("ending", on_ending.as_ref().unchecked_ref());
    on_ending.forget();
    // After a reconnect the browser resumes with Last-Event-ID; a refresh covers the rest.
    let on_open = Closure::<dyn FnMut()>::new(move || {
        store.live.set(true);
        store.refresh();
    });
    es.set_onopen(Some(on_open.as_ref().unchecked_ref()));
    on_open.forget();
    let on_error = Closure::<dyn FnMut()>::new(move || store.live.set(false));
    es.set_onerror(Some(on_error.as_ref().unchecked_ref()));
    on_error.forget();
    Some(es)
}

/// The current route, for pages that follow part of it themselves (the file manager's path).
#[derive(Clone, Copy)]
pub struct CurrentRoute(pub RwSignal<Route>);
