//! `cargo run -p google-sandbox -- --port 8090`: a Google sandbox on 127.0.0.1 with a demo
//! OAuth client and two users.

use std::net::{Ipv4Addr, SocketAddr};

use google_sandbox::{Sandbox, SandboxConfig};

const DEMO_CLIENT_ID: &str = "demo-client.apps.googleusercontent.com";
const DEMO_CLIENT_SECRET: &str = "demo-secret";
const DEMO_REDIRECT: &str = "http://127.0.0.1:8080/oauth/callback";

fn port_from_args() -> Result<u16, String> {
    let mut args = std::env::args().skip(1);
    let mut port = 8090;
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--port" => {
                let v = args.next().ok_or("--port needs a value")?;
                port = v.parse().map_err(|_| format!("invalid port: {v}"))?;
            }
            other => return Err(format!("unknown argument: {other} (usage: --port N)")),
        }
    }
    Ok(port)
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let port = port_from_args().map_err(std::io::Error::other)?;
    // The local server's webhook is plain http on loopback.
    let sandbox = Sandbox::new(SandboxConfig {
        allow_http_push: true,
        ..SandboxConfig::default()
    });
    sandbox.add_client(DEMO_CLIENT_ID, DEMO_CLIENT_SECRET, &[DEMO_REDIRECT]);
    sandbox.add_user("alice@example.com", "Alice Example");
    sandbox.add_user("bob@example.com", "Bob Example");
    let running = sandbox
        .serve(SocketAddr::from((Ipv4Addr::LOCALHOST, port)))
        .await?;
    println!("Google sandbox on {}", running.base_url);
    println!("  UI:      {}/_sandbox/ui", running.base_url);
    println!("  client:  {DEMO_CLIENT_ID} / {DEMO_CLIENT_SECRET} → {DEMO_REDIRECT}");
    println!("  users:   alice@example.com, bob@example.com");
    tokio::signal::ctrl_c().await?;
    running.shutdown();
    Ok(())
}
