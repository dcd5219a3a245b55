//! AWS SDK configuration, built once per cold start.

pub use aws_config::SdkConfig;
use aws_config::{BehaviorVersion, Region};

/// The SDK configuration from the environment (Lambda's credentials and region; honours
/// `AWS_ENDPOINT_URL` for moto or DynamoDB Local).
pub async fn from_env() -> SdkConfig {
    aws_config::defaults(BehaviorVersion::latest()).load().await
}

/// A configuration with explicit credentials, region and endpoint — for tests and local
/// runs against moto or DynamoDB Local. Nothing probes instance metadata.
pub async fn static_config(endpoint: &str, region: &str) -> SdkConfig {
    let credentials = aws_sdk_dynamodb::config::Credentials::new(
        "test",
        "test",
        None,
        None,
        "crm-google-sync-static",
    );
    aws_config::defaults(BehaviorVersion::latest())
        .credentials_provider(credentials)
        .region(Region::new(region.to_owned()))
        .endpoint_url(endpoint)
        .load()
        .await
}
