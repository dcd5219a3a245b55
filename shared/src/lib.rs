//! The library every crm-google-sync function uses.
//!
//! * [`domain`]: the product's nouns as types that parse once (tenants, API keys, accounts,
//!   pairs, cursors, channels, the change feed, OAuth sessions).
//! * Ports and their adapters: [`store`] (DynamoDB single table / embedded file store),
//!   [`secrets`] (Secrets Manager / embedded), [`queue`] (SQS FIFO / in-process).
//! * [`crypto`] (token encryption, key hashing), [`config`], [`telemetry`], [`metrics`]
//!   (CloudWatch Embedded Metric Format), [`clock`].
//! * [`http`]: what every HTTP function shares: JSON errors, the auth layer, app state.
//! * [`services`]: the use cases the functions call (tenants, API keys, …).
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
