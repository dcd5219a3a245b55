//! Connecting a Google account: the OAuth flow, which account a link connects, client errors, token keys, and logs that never carry a secret.

mod account_linking;
mod flow;
mod google_client_errors;
mod log_hygiene;
mod token_key_rotation;
