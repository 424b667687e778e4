use eventwire::prelude::*;

#[derive(Serialize, Deserialize, Event)]
#[event(topic = "const.ctx", version = 4)]
struct Tick {
    n: u32,
}

const TOPIC: &str = Tick::TOPIC;
const VERSION: u32 = <Tick as Event>::VERSION;
const BUF: [u8; Tick::TOPIC.len()] = [0; Tick::TOPIC.len()];

fn main() {
    assert_eq!(TOPIC, "const.ctx");
    assert_eq!(BUF.len(), 9);
    match 4u32 {
        VERSION => {}
        _ => unreachable!(),
    }
    assert_eq!(Tick::NAME, "Tick");
}
