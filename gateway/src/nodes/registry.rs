//! The nodes berth knows, by name: the connected engines the lifecycle and the proxy use.
//! The database holds their records (see `super::store`); this holds their connections.

use super::Node;
use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};

#[derive(Default)]
pub struct Nodes {
    by_name: RwLock<BTreeMap<String, Arc<dyn Node>>>,
}

impl Nodes {
    pub fn get(&self, name: &str) -> Option<Arc<dyn Node>> {
        self.by_name.read().ok()?.get(name).cloned()
    }

    /// Every connected node, by name.
    pub fn all(&self) -> Vec<Arc<dyn Node>> {
        self.by_name
            .read()
            .map(|m| m.values().cloned().collect())
            .unwrap_or_default()
    }

    pub fn insert(&self, node: Arc<dyn Node>) {
        if let Ok(mut m) = self.by_name.write() {
            m.insert(node.name().to_string(), node);
        }
    }

    pub fn remove(&self, name: &str) -> Option<Arc<dyn Node>> {
        self.by_name.write().ok()?.remove(name)
    }
}
