use eventwire::prelude::*;

#[derive(Serialize, Deserialize, Event)]
#[event(topic = "orders.created")]
struct OrderCreated {
    id: u64,
}

#[derive(Serialize, Deserialize, Event)]
struct PaymentMade {
    id: u64,
}

#[handler(topic = "payments.made")]
async fn on_payment(_evt: PaymentMade) {}

fn main() {}
