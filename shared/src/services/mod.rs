//! Use cases, called by the HTTP functions (which only decode and encode).

pub mod accounts;
pub mod api_keys;
pub mod connect;
pub mod deliveries;
pub mod feed;
pub mod gmail;
pub mod health;
pub mod oauth_client_settings;
pub mod quota;
pub mod records;
pub mod schedule;
pub mod settings;
pub mod settings_link;
pub mod tenants;
pub mod tokens;
pub mod validate;
