use eventwire::prelude::*;

#[derive(Serialize, Deserialize, Event)]
#[event(topic = "a.b.c.d.e.f.g.h.i.j.k.l.m.n.o.p.q")]
struct Deep {
    id: u64,
}

fn main() {}
