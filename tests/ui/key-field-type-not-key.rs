use eventwire::prelude::*;

#[derive(Serialize, Deserialize)]
struct Money {
    cents: i64,
}

#[derive(Serialize, Deserialize, Event)]
struct PaymentMade {
    #[event(key)]
    amount: Money,
}

fn main() {}
