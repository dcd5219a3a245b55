//! Outbound webhooks to the CRM.

mod webhooks;
