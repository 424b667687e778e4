use eventwire::prelude::*;

#[derive(Serialize, Deserialize, Event)]
#[event(topic = "orders.created")]
struct OrderCreated {
    id: u64,
}

#[handler]
async fn on_order(_evt: OrderCreated, ctx: &Context) {
    let _ = ctx.attempt();
}

fn main() {}
