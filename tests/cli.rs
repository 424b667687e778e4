//! The command line users wire into their binary.

use eventwire::cli::execute;
use eventwire::prelude::*;
use eventwire::{AppBuilder, Error};

#[derive(Debug, Clone, Serialize, Deserialize, Event)]
#[event(topic = "cli.ticket-opened")]
struct TicketOpened {
    id: u64,
}

#[handler(group = "support")]
async fn triage(_evt: TicketOpened) {}

fn builder() -> AppBuilder {
    App::builder()
        .service("helpdesk")
        .handlers(HandlerSelection::groups(["support"]))
}

#[tokio::test]
async fn check_passes_or_fails_with_every_problem() {
    let out = execute(builder(), ["helpdesk", "check"]).await.unwrap();
    assert_eq!(out, "helpdesk: start-up validation passed\n");
    let bad = App::builder()
        .service("helpdesk")
        .handlers(HandlerSelection::groups(["suport"]));
    match execute(bad, ["helpdesk", "check"]).await {
        Err(Error::Validation(v)) => assert!(v.to_string().contains("`suport`"), "{v}"),
        other => panic!("expected validation errors, got {other:?}"),
    }
}

#[tokio::test]
async fn describe_in_every_format() {
    let json = execute(
        builder()
            .transport_url("nats://user:secret@10.0.0.1:4222")
            .unwrap(),
        ["helpdesk", "describe"],
    )
    .await
    .unwrap();
    let doc: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(doc["asyncapi"], "3.0.0");
    assert_eq!(doc["operations"]["support__triage"]["action"], "receive");
    assert_eq!(doc["servers"]["default"]["host"], "10.0.0.1:4222");
    assert!(
        !json.contains("secret"),
        "credentials stay out of descriptions"
    );

    let yaml = execute(
        builder(),
        ["helpdesk", "describe", "--format", "asyncapi-yaml"],
    )
    .await
    .unwrap();
    assert!(yaml.contains("\"asyncapi\": \"3.0.0\""), "{yaml}");
    let mermaid = execute(builder(), ["helpdesk", "describe", "--format", "mermaid"])
        .await
        .unwrap();
    assert!(
        mermaid.contains("t_cli_ticket_opened -->|triage| g_support"),
        "{mermaid}"
    );
}

#[tokio::test]
async fn lock_writes_then_checks() {
    let dir = std::env::temp_dir().join(format!("eventwire-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("eventwire.lock");
    let _ = std::fs::remove_file(&path);
    let p = path.to_str().unwrap();
    execute(builder(), ["helpdesk", "lock", "--path", p])
        .await
        .unwrap();
    assert!(std::fs::read_to_string(&path)
        .unwrap()
        .contains("cli.ticket-opened"));
    let out = execute(builder(), ["helpdesk", "lock", "--path", p])
        .await
        .unwrap();
    assert!(out.contains("up to date"), "{out}");
    execute(builder(), ["helpdesk", "lock", "--path", p, "--update"])
        .await
        .unwrap();
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn bad_arguments_explain_themselves() {
    match execute(builder(), ["helpdesk", "describe", "--format", "pdf"]).await {
        Err(Error::Cli(e)) => {
            let msg = e.to_string();
            assert!(msg.contains("invalid value 'pdf'"), "{msg}")
        }
        other => panic!("expected a usage error, got {other:?}"),
    }
}

#[tokio::test]
async fn help_succeeds_and_usage_errors_fail() {
    use std::process::ExitCode;
    let code = eventwire::cli::main_with_args(builder(), ["helpdesk", "--help"]).await;
    assert_eq!(code, ExitCode::SUCCESS);
    let code = eventwire::cli::main_with_args(builder(), ["helpdesk", "describe", "--help"]).await;
    assert_eq!(code, ExitCode::SUCCESS);
    let code = eventwire::cli::main_with_args(builder(), ["helpdesk", "bogus"]).await;
    assert_eq!(code, ExitCode::FAILURE);
}
