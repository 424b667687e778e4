// Events and handlers declared inside a function body.
use eventwire::prelude::*;

fn main() {
    #[derive(Serialize, Deserialize, Event)]
    #[event(topic = "local.items")]
    struct Local {
        id: u64,
    }

    #[handler]
    async fn on_local(_evt: Local) {}

    assert_eq!(Local::TOPIC, "local.items");
    let _fut = on_local(Local { id: 1 });
}
