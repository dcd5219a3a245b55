//! Use cases, called by the HTTP functions (which only decode and encode).

pub mod api_keys;
pub mod tenants;
