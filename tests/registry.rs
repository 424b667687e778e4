//! The link-time registry finds events and handlers across modules and crates.

use std::sync::atomic::Ordering;

use eventwire::prelude::*;
use eventwire::testing::TestApp;
use eventwire::{Format, Registry};
use shared_handlers::{SharedPing, SHARED_PINGS};

mod orders {
    use eventwire::prelude::*;

    #[derive(Debug, Clone, Serialize, Deserialize, Event)]
    pub struct OrderCreated {
        #[event(key)]
        pub order_id: u64,
    }

    pub mod handlers {
        use super::OrderCreated;
        use eventwire::prelude::*;

        #[handler(
            group = "orders-local",
            name = "count_orders",
            retries = 7,
            backoff = "10ms..1s",
            timeout = "2s",
            concurrency = 3
        )]
        pub async fn on_order_created(evt: OrderCreated) -> Result<(), HandlerError> {
            let _ = evt.order_id;
            Ok(())
        }
    }
}

#[test]
fn descriptors_from_every_module_and_crate_are_registered() {
    let registry = Registry::global();
    let event = registry
        .events()
        .iter()
        .find(|e| e.name == "OrderCreated")
        .expect("local event registered");
    assert_eq!(
        event.topic, "order.created",
        "topic derived from the type name"
    );
    assert_eq!(event.version, 1);
    assert_eq!(event.format, Format::Json);
    assert_eq!(event.key_field, Some("order_id"));
    assert_eq!(event.type_path, "registry::orders::OrderCreated");
    assert!(registry
        .events()
        .iter()
        .any(|e| e.type_path == "shared_handlers::SharedPing"));

    let h = registry
        .handlers()
        .iter()
        .find(|h| h.name == "count_orders")
        .expect("local handler registered under its `name`");
    assert_eq!(h.function, "registry::orders::handlers::on_order_created");
    assert_eq!(h.topic, "order.created");
    assert_eq!(h.event, Some("OrderCreated"));
    assert_eq!(h.options.group, Some("orders-local"));
    assert_eq!(h.options.retries, Some(7));
    assert_eq!(h.options.concurrency(), 3);
    assert_eq!(h.options.timeout(), Some(std::time::Duration::from_secs(2)));
    let backoff = h.options.backoff.unwrap();
    assert_eq!(backoff.initial, std::time::Duration::from_millis(10));
    assert_eq!(backoff.max, std::time::Duration::from_secs(1));

    let names: Vec<_> = registry.handlers().iter().map(|h| h.function).collect();
    assert!(
        names.contains(&"shared_handlers::count_shared_ping"),
        "{names:?}"
    );
    assert!(
        names.contains(&"shared_handlers::nested::audit_shared_ping"),
        "{names:?}"
    );
}

#[tokio::test]
async fn handlers_of_another_crate_run_without_a_registration_list() {
    let app = TestApp::builder()
        .handlers(HandlerSelection::groups(["shared", "shared-audit"]))
        .build()
        .await
        .unwrap();
    let mut names = app.app().handler_names();
    names.sort_unstable();
    assert_eq!(names, ["audit_shared_ping", "count_shared_ping"]);
    for n in 0..5 {
        app.publish(&SharedPing { n }).await.unwrap();
    }
    app.wait_idle().await;
    assert_eq!(SHARED_PINGS.load(Ordering::SeqCst), 5);
    assert_eq!(app.succeeded("audit_shared_ping"), 5);
    app.shutdown().await.unwrap();
}

#[test]
fn the_function_stays_an_ordinary_function() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let result = rt.block_on(orders::handlers::on_order_created(orders::OrderCreated {
        order_id: 1,
    }));
    assert!(result.is_ok());
}

#[test]
fn event_constants_work_in_const_context() {
    const TOPIC: &str = <orders::OrderCreated as Event>::TOPIC;
    const LEN: usize = SharedPing::TOPIC.len();
    let buf = [0u8; LEN];
    assert_eq!(TOPIC, "order.created");
    assert_eq!(buf.len(), "shared.ping".len());
    assert_eq!(SharedPing::NAME, "SharedPing");
}
