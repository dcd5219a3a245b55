//! Contacts two-way sync, the feature's one folder: the CRM's contact model ([`model`]), the
//! normalized form both sides are compared in, with the mapping onto Google's `Person` and
//! the per-field sync directions ([`normal`]), the CRM's side of it ([`api`]: record pushes
//! and `contacts:push`, the pair's state) and the pass that talks to the People API
//! ([`sync`], over the shared core [`crate::sync`]).

pub mod api;
pub mod model;
pub mod normal;
pub mod sync;
