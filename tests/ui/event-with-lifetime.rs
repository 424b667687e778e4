use eventwire::prelude::*;

#[derive(Serialize, Event)]
#[event(topic = "names.seen")]
struct NameSeen<'a> {
    name: &'a str,
}

fn main() {}
