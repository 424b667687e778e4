use eventwire::prelude::*;

#[derive(Serialize, Deserialize, Event)]
struct FileUploaded {
    #[event(key)]
    digest: Vec<u8>,
}

fn main() {}
