//! The library every crm-google-sync function uses.
//!
//! # Code map: what to open, in order, for each kind of change
//!
//! * **An HTTP route** (`/v1/...`): the function's `lib.rs` under `functions/` (its
//!   `routes()`), then the use case it calls: [`calendar::api`],
//!   [`calendar::availability`], [`contacts::api`] or one of [`services`]; errors are
//!   [`http::ApiError`], the contract is `docs/openapi.yaml`.
//! * **How a calendar event or a contact syncs**: the feature's folder ([`calendar`],
//!   [`contacts`]: `model` (the CRM's record), `normal` (what both sides are compared in),
//!   `sync/` (the pass: `reading`, then `event`/`contact`, then `writing`)), over the shared
//!   core [`sync`] (`decide` first: the pure decision; then `read`, `execute`, `push`,
//!   `guard`, `plan`). Google's wire types and calls are in [`google`].
//! * **When a sync runs**: [`services::schedule`] (the scheduler's policy), the worker
//!   (`functions/sync-worker`), push channels ([`calendar::channels`]), pacing and quota
//!   ([`google::pacing`], [`services::quota`]).
//! * **What the CRM is told**: the feed ([`domain::feed`], [`services::feed`]) and webhook
//!   deliveries ([`delivery`]).
//! * **A stored item or a table key**: [`store::keys`] (every key, with the access patterns),
//!   [`store::repo`] (typed reads and writes over the [`store::Table`] port), its adapters
//!   [`store::dynamo`] and [`store::embedded`].
//! * **A setting or a secret**: [`config`] (environment), [`domain::settings`] (tenant and
//!   account settings), [`secrets`].
//! * **A page for people**: [`pages`], then the page's function (`oauth-callback`:
//!   connect and settings; `admin-config`: the console).
//!
//! # The parts
//!
//! * [`domain`]: the product's nouns as types that parse once (tenants, API keys, accounts,
//!   pairs, cursors, channels, the change feed, OAuth sessions).
//! * Ports and their adapters: [`store`] (DynamoDB single table / embedded file store),
//!   [`secrets`] (Secrets Manager / embedded), [`queue`] (SQS FIFO / in-process), and
//!   [`google`] (the Google client: OAuth, Calendar, People, batch, pacing, retries).
//! * [`sync`]: the sync core both collections share; [`calendar`] and [`contacts`]: one
//!   folder per synced feature.
//! * [`delivery`]: signed webhook deliveries of the feed, one file per step (`sign`,
//!   `payload`, `client`, `target`, `lease`, `run`, `by_hand`).
//! * [`crypto`] (token encryption, key hashing), [`config`], [`telemetry`], [`metrics`]
//!   (CloudWatch Embedded Metric Format), [`clock`].
//! * [`http`]: what every HTTP function shares: JSON errors, the auth layer, app state.
//! * [`services`]: the other use cases the functions call (tenants, API keys, accounts,
//!   connect, schedule, quota, …).
//! * [`pages`]: what the pages for people share: security headers, stylesheet, language.

pub mod app;
pub mod aws;
pub mod calendar;
pub mod clock;
pub mod config;
pub mod contacts;
pub mod crypto;
pub mod delivery;
pub mod domain;
pub mod google;
pub mod http;
pub mod metrics;
pub mod pages;
pub mod queue;
pub mod secrets;
pub mod services;
pub mod store;
pub mod sync;
pub mod telemetry;

#[cfg(test)]
mod layers {
    //! Dependencies run one way: `domain` ← `store` ← `google` ← the features, whose records
    //! and normalized forms name neither the HTTP layer nor the use cases (see
    //! docs/architecture.md, "Layers"). A layer's code (not its docs) names no module above it.

    use std::collections::BTreeSet;
    use std::path::Path;

    /// Each layer (a folder or a file) and the crate modules its code may name (besides
    /// itself).
    const LAYERS: &[(&str, &[&str])] = &[
        ("domain", &[]),
        ("store", &["domain", "clock", "crypto"]),
        ("google", &["domain", "clock", "config", "metrics"]),
        // The features' pure cores: the CRM's records and the normalized forms.
        ("calendar/model.rs", &["domain"]),
        ("calendar/normal.rs", &["domain", "calendar", "crypto"]),
        ("contacts/model.rs", &["domain", "calendar"]),
        (
            "contacts/normal.rs",
            &["domain", "contacts", "crypto", "google"],
        ),
        // The sync core: over the ports and the normalized forms, naming no collection's
        // pass and no use case but the grant (an access token, and dropping one Google
        // refused).
        (
            "sync",
            &[
                "app",
                "clock",
                "domain",
                "google",
                "store",
                "calendar::model",
                "calendar::normal",
                "contacts::model",
                "contacts::normal",
                "services::tokens",
            ],
        ),
        // The collections' passes: the core, the feature's own parts, the ports.
        (
            "calendar/sync",
            &[
                "app",
                "calendar",
                "clock",
                "contacts::normal",
                "domain",
                "google",
                "store",
                "sync",
            ],
        ),
        (
            "contacts/sync",
            &[
                "app",
                "calendar::model",
                "clock",
                "contacts",
                "domain",
                "google",
                "store",
                "sync",
            ],
        ),
    ];

    fn files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
        if dir.is_file() {
            out.push(dir.to_owned());
            return;
        }
        for entry in std::fs::read_dir(dir).unwrap().flatten() {
            let path = entry.path();
            if path.is_dir() {
                files(&path, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push(path);
            }
        }
    }

    /// The crate modules named by the code of the files under `dir` (comments left out).
    fn named(dir: &Path) -> BTreeSet<(String, String)> {
        let mut paths = Vec::new();
        files(dir, &mut paths);
        let mut out = BTreeSet::new();
        for path in paths {
            let text = std::fs::read_to_string(&path).unwrap();
            for line in text.lines().filter(|l| !l.trim_start().starts_with("//")) {
                for (i, _) in line.match_indices("crate::") {
                    let path_named: String = line[i + 7..]
                        .chars()
                        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == ':')
                        .collect();
                    out.insert((path_named, path.display().to_string()));
                }
            }
        }
        out
    }

    #[test]
    fn dependencies_run_one_way() {
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let mut upward = Vec::new();
        for (layer, allowed) in LAYERS {
            // A folder's code names itself freely; a file's only what it is allowed.
            let own = if layer.ends_with(".rs") { "" } else { layer };
            for (named, file) in named(&src.join(layer)) {
                let module = named.split("::").next().unwrap_or_default();
                // An allowed module, or an allowed part of one (`calendar::normal`).
                let allowed = module == own
                    || allowed.iter().any(|a| {
                        a.split_once("::").map_or(*a == module, |_| {
                            named == *a || named.starts_with(&format!("{a}::"))
                        })
                    });
                if !allowed {
                    upward.push(format!("{file} names crate::{named}"));
                }
            }
        }
        assert!(upward.is_empty(), "imports that point up: {upward:#?}");
    }

    /// The use cases' modules (`services/*.rs`) and the others each one's code names.
    fn use_cases() -> std::collections::BTreeMap<String, BTreeSet<String>> {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/services");
        let mut graph = std::collections::BTreeMap::new();
        for entry in std::fs::read_dir(&dir).unwrap().flatten() {
            let path = entry.path();
            let name = path.file_stem().unwrap().to_string_lossy().into_owned();
            let text = std::fs::read_to_string(&path).unwrap();
            let mut uses = BTreeSet::new();
            for line in text.lines().filter(|l| !l.trim_start().starts_with("//")) {
                for prefix in ["super::", "crate::services::"] {
                    for (i, _) in line.match_indices(prefix) {
                        let other: String = line[i + prefix.len()..]
                            .chars()
                            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                            .collect();
                        if !other.is_empty() && other != name {
                            uses.insert(other);
                        }
                    }
                }
            }
            graph.insert(name, uses);
        }
        graph
    }

    #[test]
    fn the_use_cases_name_each_other_without_a_cycle() {
        let graph = use_cases();
        assert!(
            graph["accounts"].contains("tokens"),
            "the scan sees the modules' names"
        );
        // Depth-first, with the path walked so far: a module met again on it closes a cycle.
        fn walk<'a>(
            graph: &'a std::collections::BTreeMap<String, BTreeSet<String>>,
            module: &'a str,
            path: &mut Vec<&'a str>,
            done: &mut BTreeSet<&'a str>,
        ) -> Result<(), String> {
            if let Some(at) = path.iter().position(|m| *m == module) {
                return Err(format!("{} -> {module}", path[at..].join(" -> ")));
            }
            if !done.insert(module) {
                return Ok(());
            }
            path.push(module);
            for next in graph.get(module).into_iter().flatten() {
                walk(graph, next, path, done)?;
            }
            path.pop();
            Ok(())
        }
        let mut done = BTreeSet::new();
        for module in graph.keys() {
            if let Err(cycle) = walk(&graph, module, &mut Vec::new(), &mut done) {
                panic!("the use cases name each other in a cycle: {cycle}");
            }
        }
    }
}
