//! Contacts two-way sync end to end: passes, progress, fidelity against a strict People API, convergence.

mod convergence;
mod fidelity;
mod progress;
mod sync;
