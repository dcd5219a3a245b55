//! End-to-end tests of the Google sandbox over real HTTP on 127.0.0.1:0. One binary, one
//! module per surface; every successful JSON response is validated against Google's
//! discovery documents (see `schema.rs`).

mod batch;
mod calendar;
mod common;
mod control;
mod oauth;
mod oauth2_crate;
mod people;
mod push;
mod recurrence;
mod schema;
mod sync;
