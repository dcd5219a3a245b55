//! The end-to-end tests: one test binary, a module per feature, one shared [`world`].
//!
//! Run one feature or one file with a filter, e.g.
//! `cargo test -p e2e-tests --test e2e calendar::push::` (tests on the embedded adapters need
//! no emulator); `infra/scripts/test.sh -p e2e-tests --test e2e adapters::` starts DynamoDB
//! Local and moto for those on the AWS adapters. A new test goes in the feature's folder and
//! starts from [`world::Env`] (`Env::new_on(Backend::Embedded)` where it can).

mod adapters;
mod api;
mod bench;
mod calendar;
mod connect;
mod contacts;
mod delivery;
mod google_clients;
mod lambda;
mod pages;
mod world;
