//! Secrets kept in memory, optionally persisted to a JSON file readable by the owner only
//! (the local server's stand-in for Secrets Manager).

use super::{validate_name, Secrets, SecretsError, SecretsResult};
use async_trait::async_trait;
use secrecy::{ExposeSecret, SecretString};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Mutex;

#[derive(Default)]
pub struct EmbeddedSecrets {
    values: Mutex<BTreeMap<String, String>>,
    file: Option<PathBuf>,
}

impl EmbeddedSecrets {
    pub fn in_memory() -> Self {
        Self::default()
    }

    pub fn open(file: impl Into<PathBuf>) -> SecretsResult<Self> {
        let file = file.into();
        let values = match std::fs::read(&file) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(SecretsError::backend)?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => BTreeMap::new(),
            Err(e) => return Err(SecretsError::backend(e)),
        };
        Ok(Self {
            values: Mutex::new(values),
            file: Some(file),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, String>> {
        self.values.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn persist(&self, values: &BTreeMap<String, String>) -> SecretsResult<()> {
        let Some(file) = &self.file else {
            return Ok(());
        };
        if let Some(dir) = file.parent() {
            std::fs::create_dir_all(dir).map_err(SecretsError::backend)?;
        }
        let bytes = serde_json::to_vec_pretty(values).map_err(SecretsError::backend)?;
        let tmp = file.with_extension("tmp");
        write_private(&tmp, &bytes).map_err(SecretsError::backend)?;
        std::fs::rename(&tmp, file).map_err(SecretsError::backend)
    }
}

#[cfg(unix)]
fn write_private(path: &std::path::Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    f.write_all(bytes)
}

#[cfg(not(unix))]
fn write_private(path: &std::path::Path, bytes: &[u8]) -> std::io::Result<()> {
    std::fs::write(path, bytes)
}

#[async_trait]
impl Secrets for EmbeddedSecrets {
    async fn get(&self, name: &str) -> SecretsResult<Option<SecretString>> {
        validate_name(name)?;
        Ok(self.lock().get(name).map(|v| SecretString::from(v.clone())))
    }

    async fn put(&self, name: &str, value: SecretString) -> SecretsResult<()> {
        validate_name(name)?;
        let mut values = self.lock();
        values.insert(name.to_owned(), value.expose_secret().to_owned());
        self.persist(&values)
    }

    async fn delete(&self, name: &str) -> SecretsResult<()> {
        validate_name(name)?;
        let mut values = self.lock();
        values.remove(name);
        self.persist(&values)
    }
}
