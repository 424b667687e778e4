// The generated code must not depend on what the user's module calls
// `Result`, `Ok`, `Option`, `Box`, and friends.
#![allow(dead_code, non_camel_case_types, non_snake_case)]

mod user {
    use eventwire::prelude::*;

    struct Result;
    struct Option;
    struct Box;
    struct Vec;
    struct String;
    struct Default;
    struct Arc;
    struct Duration;
    fn Ok() {}
    fn Err() {}
    fn Some() {}
    #[allow(non_upper_case_globals)]
    const None: () = ();
    mod core {}
    mod std {}

    #[derive(Serialize, Deserialize, Event)]
    #[event(topic = "hygiene.checked", version = 3)]
    pub struct Checked {
        #[event(key)]
        id: u64,
    }

    #[handler(topic = "hygiene.checked", retries = 2, timeout = "1s", backoff = "1ms")]
    async fn on_checked(_evt: Checked, _ctx: Context) -> ::core::result::Result<(), HandlerError> {
        ::core::result::Result::Ok(())
    }
}

fn main() {}
