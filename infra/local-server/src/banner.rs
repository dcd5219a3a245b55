//! What the local server prints on start: where everything is and how to begin.

use crate::seed::DemoCredentials;
use crate::settings::{Choice, Settings};
use shared::config::Config;

pub fn print(settings: &Settings, config: &Config, creds: &DemoCredentials) {
    let api = &config.public_base_url;
    let kind = |c: &Choice, local: &str, aws: &str| match c {
        Choice::Local => local.to_owned(),
        Choice::Aws => aws.to_owned(),
    };
    println!(
        r#"
crm-google-sync is running (local server)

  API                  {api}
  OAuth callback       {api}/oauth/callback
  Google webhook       {api}/webhooks/google/calendar
  Google               {google}
  store / secrets / queue: {store} / {secrets} / {queue}; data in {data}

  admin console        {api}/admin  (sign in with the demo admin key below)
  user settings        POST {api}/v1/users/<user>/settings-link with a sync key,
                       then open the "url" it answers (a CRM user's Google settings page)

  operator key         {operator}
  demo tenant          {tenant}
  demo admin key       {admin}

Try it:
  curl -s -X POST {api}/v1/admin/api-keys \
    -H "Authorization: Bearer {admin}" -H 'Content-Type: application/json' \
    -d '{{"name":"crm backend","scope":"sync"}}'
  curl -s -X POST {api}/v1/tenants \
    -H "Authorization: Bearer {operator}" -H 'Content-Type: application/json' \
    -d '{{"name":"Another customer"}}'
"#,
        google = if settings.sandbox {
            format!(
                "Google sandbox at {} (browse {}/_sandbox/ui)",
                config.google.calendar_base, config.google.calendar_base
            )
        } else {
            "real Google".to_owned()
        },
        store = kind(
            &settings.store,
            "embedded",
            &format!("DynamoDB table {}", settings.table_name)
        ),
        secrets = kind(&settings.secrets, "embedded", "Secrets Manager"),
        queue = kind(&settings.queue, "in-process", "SQS"),
        data = settings.data_dir.display(),
        operator = creds.operator_key,
        tenant = creds.tenant,
        admin = creds.admin_key,
    );
}
