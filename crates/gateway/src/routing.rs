//! The in-memory routing table: app key → the app's active deployment, swapped atomically.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use arc_swap::ArcSwap;
use deployment::{AppKey, Deployment};
use runtime::LoadedApp;

use crate::admission::AppAdmission;

/// An app as the gateway serves it: its active deployment and, when it has functions, the
/// loaded code.
pub struct LiveApp {
    pub deployment: Arc<Deployment>,
    pub functions: Option<Arc<dyn LoadedApp>>,
    /// Rate limit and concurrency bulkhead; a new deployment starts with a fresh one.
    pub admission: AppAdmission,
}

impl LiveApp {
    pub fn new(deployment: Arc<Deployment>, functions: Option<Arc<dyn LoadedApp>>) -> LiveApp {
        let admission = AppAdmission::new(deployment.admission);
        LiveApp { deployment, functions, admission }
    }
}

/// Told of an app whose deployment changed or went.
pub type ChangeListener = Box<dyn Fn(&AppKey) + Send + Sync>;

/// Readers never block: a lookup is one atomic load. Writers copy the map under a mutex,
/// which is fine because deploys are rare next to requests.
#[derive(Default)]
pub struct RoutingTable {
    apps: ArcSwap<HashMap<AppKey, Arc<LiveApp>>>,
    write_lock: Mutex<()>,
    /// Told of every app whose deployment changed or went (the response cache purges it).
    on_change: std::sync::OnceLock<ChangeListener>,
}

impl RoutingTable {
    pub fn new() -> RoutingTable {
        RoutingTable::default()
    }

    pub fn get(&self, app: &AppKey) -> Option<Arc<LiveApp>> {
        self.apps.load().get(app).cloned()
    }

    /// Makes `app` the active deployment of its app; requests already running keep the old one.
    pub fn insert(&self, app: LiveApp) {
        let key = app.deployment.app.clone();
        self.update(|apps| {
            apps.insert(key.clone(), Arc::new(app));
        });
        self.changed(&key);
    }

    /// Puts back an app taken out with [`RoutingTable::remove`] (an archive that failed).
    pub fn put_back(&self, app: Arc<LiveApp>) {
        let key = app.deployment.app.clone();
        self.update(|apps| {
            apps.insert(key.clone(), app);
        });
        self.changed(&key);
    }

    pub fn remove(&self, app: &AppKey) {
        self.update(|apps| {
            apps.remove(app);
        });
        self.changed(app);
    }

    /// Calls `listener` for each app whose deployment changes or goes, from now on (once).
    pub fn on_change(&self, listener: ChangeListener) {
        let _ = self.on_change.set(listener);
    }

    fn changed(&self, app: &AppKey) {
        if let Some(listener) = self.on_change.get() {
            listener(app);
        }
    }

    /// Every live app, at one instant.
    pub fn all(&self) -> Vec<Arc<LiveApp>> {
        self.apps.load().values().cloned().collect()
    }

    pub fn len(&self) -> usize {
        self.apps.load().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn update(&self, change: impl FnOnce(&mut HashMap<AppKey, Arc<LiveApp>>)) {
        let _guard = self.write_lock.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let mut apps = HashMap::clone(&self.apps.load());
        change(&mut apps);
        self.apps.store(Arc::new(apps));
    }
}
