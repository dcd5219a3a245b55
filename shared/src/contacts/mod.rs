//! Contacts sync: the CRM's contact model ([`model`]) and the normalized form both sides are
//! compared in, with the mapping onto Google's `Person` and the per-field sync directions
//! ([`normal`]).

pub mod model;
pub mod normal;
