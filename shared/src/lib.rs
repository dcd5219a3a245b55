//! The library every crm-google-sync function uses.
//!
//! # Code map: what to open, in order, for each kind of change
//!
//! * **An HTTP route** (`/v1/...`): the function's `lib.rs` under `functions/` (its
//!   `routes()`), then the use case it calls: [`calendar::api`], [`contacts::api`] or one
//!   of [`services`]; errors are [`http::ApiError`], the contract is `docs/openapi.yaml`.
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
//! * [`delivery`]: signed webhook deliveries of the feed.
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
                    let module: String = line[i + 7..]
                        .chars()
                        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                        .collect();
                    out.insert((module, path.display().to_string()));
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
            for (module, file) in named(&src.join(layer)) {
                if module != *layer && !allowed.contains(&module.as_str()) {
                    upward.push(format!("{file} names crate::{module}"));
                }
            }
        }
        assert!(upward.is_empty(), "imports that point up: {upward:#?}");
    }
}
