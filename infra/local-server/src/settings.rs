//! The local server's settings, from the environment (every one optional).
//!
//! | variable | default | meaning |
//! |---|---|---|
//! | `CGS_PORT` | `8080` | API port on 127.0.0.1 |
//! | `CGS_SANDBOX_PORT` | `8090` | Google sandbox port on 127.0.0.1 (`CGS_GOOGLE=sandbox`) |
//! | `CGS_DATA_DIR` | `.local` | embedded store and secrets files |
//! | `CGS_GOOGLE` | `sandbox` | `sandbox`, or `google` for real Google (`GOOGLE_*` overrides apply) |
//! | `CGS_STORE` | `embedded` | `embedded`, or `dynamodb` (`TABLE_NAME`, created if missing) |
//! | `CGS_SECRETS` | `embedded` | `embedded`, or `secretsmanager` (`SECRETS_PREFIX`) |
//! | `CGS_QUEUE` | `inprocess` | `inprocess`, or `sqs` (`QUEUE_URL`, polled by the local worker) |
//! | `CGS_AWS_ENDPOINT` | — | an AWS endpoint such as moto (`http://127.0.0.1:5000`) with test credentials; without it the default AWS credential chain is used |
//! | `CGS_SCHEDULE_SECS` | `60` | how often the scheduler ticks (as EventBridge Scheduler does in AWS) |
//! | `PUBLIC_BASE_URL` | `http://127.0.0.1:{CGS_PORT}` | the API's public URL |

use anyhow::{bail, Context, Result};
use std::path::PathBuf;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Choice {
    Local,
    Aws,
}

#[derive(Debug, Clone)]
pub struct Settings {
    pub port: u16,
    pub sandbox_port: u16,
    pub data_dir: PathBuf,
    pub sandbox: bool,
    pub store: Choice,
    pub secrets: Choice,
    pub queue: Choice,
    pub aws_endpoint: Option<String>,
    pub schedule_secs: u64,
    pub public_base_url: String,
    pub table_name: String,
    pub secrets_prefix: String,
    pub queue_url: Option<String>,
}

fn var(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

fn choice(name: &str, local: &str, aws: &str) -> Result<Choice> {
    match var(name) {
        None => Ok(Choice::Local),
        Some(v) if v == local => Ok(Choice::Local),
        Some(v) if v == aws => Ok(Choice::Aws),
        Some(v) => bail!("{name}={v}: expected {local} or {aws}"),
    }
}

fn number<T: std::str::FromStr>(name: &str, default: T) -> Result<T> {
    match var(name) {
        None => Ok(default),
        Some(v) => v
            .parse()
            .ok()
            .with_context(|| format!("{name}={v} is not a number")),
    }
}

impl Settings {
    pub fn from_env() -> Result<Self> {
        let port = number("CGS_PORT", 8080u16)?;
        let sandbox = match var("CGS_GOOGLE").as_deref() {
            None | Some("sandbox") => true,
            Some("google") => false,
            Some(v) => bail!("CGS_GOOGLE={v}: expected sandbox or google"),
        };
        let queue = choice("CGS_QUEUE", "inprocess", "sqs")?;
        let queue_url = var("QUEUE_URL");
        if queue == Choice::Aws && queue_url.is_none() {
            bail!("CGS_QUEUE=sqs needs QUEUE_URL");
        }
        Ok(Self {
            port,
            sandbox_port: number("CGS_SANDBOX_PORT", 8090u16)?,
            data_dir: var("CGS_DATA_DIR")
                .unwrap_or_else(|| ".local".into())
                .into(),
            sandbox,
            store: choice("CGS_STORE", "embedded", "dynamodb")?,
            secrets: choice("CGS_SECRETS", "embedded", "secretsmanager")?,
            queue,
            aws_endpoint: var("CGS_AWS_ENDPOINT"),
            schedule_secs: number("CGS_SCHEDULE_SECS", 60u64)?.max(1),
            public_base_url: var("PUBLIC_BASE_URL")
                .unwrap_or_else(|| format!("http://127.0.0.1:{port}")),
            table_name: var("TABLE_NAME").unwrap_or_else(|| "crm-google-sync-local".into()),
            secrets_prefix: var("SECRETS_PREFIX")
                .unwrap_or_else(|| "crm-google-sync-local/".into()),
            queue_url,
        })
    }
}
