//! Secrets Manager adapter, with a short in-process cache (secrets are read on most
//! requests; Lambda instances live minutes to hours).

use super::{validate_name, Secrets, SecretsError, SecretsResult};
use async_trait::async_trait;
use aws_sdk_secretsmanager::Client;
use secrecy::{ExposeSecret, SecretString};
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

pub struct SecretsManager {
    client: Client,
    prefix: String,
    ttl: Duration,
    cache: Mutex<HashMap<String, (Instant, Option<SecretString>)>>,
}

impl SecretsManager {
    /// `prefix` is prepended to every name (e.g. `crm-google-sync/`).
    pub fn new(client: Client, prefix: impl Into<String>, ttl: Duration) -> Self {
        Self {
            client,
            prefix: prefix.into(),
            ttl,
            cache: Mutex::new(HashMap::new()),
        }
    }

    fn id(&self, name: &str) -> String {
        format!("{}{name}", self.prefix)
    }

    fn cache(&self) -> std::sync::MutexGuard<'_, HashMap<String, (Instant, Option<SecretString>)>> {
        self.cache.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[async_trait]
impl Secrets for SecretsManager {
    async fn get(&self, name: &str) -> SecretsResult<Option<SecretString>> {
        validate_name(name)?;
        if let Some((at, v)) = self.cache().get(name) {
            if at.elapsed() < self.ttl {
                return Ok(v.clone());
            }
        }
        let result = self
            .client
            .get_secret_value()
            .secret_id(self.id(name))
            .send()
            .await;
        let value = match result {
            Ok(out) => out.secret_string.map(SecretString::from),
            Err(e) => {
                let e = e.into_service_error();
                if e.is_resource_not_found_exception() {
                    None
                } else {
                    return Err(SecretsError::backend(e));
                }
            }
        };
        self.cache()
            .insert(name.to_owned(), (Instant::now(), value.clone()));
        Ok(value)
    }

    async fn forget(&self, name: &str) {
        self.cache().remove(name);
    }

    async fn put(&self, name: &str, value: SecretString) -> SecretsResult<()> {
        validate_name(name)?;
        let id = self.id(name);
        let updated = self
            .client
            .put_secret_value()
            .secret_id(&id)
            .secret_string(value.expose_secret())
            .send()
            .await;
        match updated {
            Ok(_) => {}
            Err(e) => {
                let e = e.into_service_error();
                if !e.is_resource_not_found_exception() {
                    return Err(SecretsError::backend(e));
                }
                self.client
                    .create_secret()
                    .name(&id)
                    .secret_string(value.expose_secret())
                    .send()
                    .await
                    .map_err(|e| SecretsError::backend(e.into_service_error()))?;
            }
        }
        self.cache()
            .insert(name.to_owned(), (Instant::now(), Some(value)));
        Ok(())
    }

    async fn delete(&self, name: &str) -> SecretsResult<()> {
        validate_name(name)?;
        let result = self
            .client
            .delete_secret()
            .secret_id(self.id(name))
            .force_delete_without_recovery(true)
            .send()
            .await;
        self.cache().insert(name.to_owned(), (Instant::now(), None));
        match result {
            Ok(_) => Ok(()),
            Err(e) => {
                let e = e.into_service_error();
                if e.is_resource_not_found_exception() {
                    Ok(())
                } else {
                    Err(SecretsError::backend(e))
                }
            }
        }
    }
}
