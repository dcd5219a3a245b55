//! The public HTTP API: tenants and keys, the published OpenAPI contract, per-tenant throttling.

mod openapi_contract;
mod tenant_throttling;
mod tenants;
