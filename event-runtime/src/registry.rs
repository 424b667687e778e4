//! The link-time registry of events and handlers, and start-up validation.
//!
//! `#[derive(Event)]` and `#[handler]` each add a descriptor to a
//! `linkme` distributed slice, so every event and handler linked into the
//! binary, from any module or crate, is found without a registration list.
//!
//! Validation is callable from the user's own tests:
//!
//! ```
//! use eventwire::{registry::Registry, MemoryTransport};
//!
//! let errors = Registry::global().validate(&MemoryTransport::new(), "orders", &Default::default());
//! assert!(errors.is_ok(), "{}", errors.unwrap_err());
//! ```

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use crate::delivery::StartPosition;
use crate::event::EventDescriptor;
use crate::handler::options::Durability;
use crate::handler::HandlerDescriptor;
use crate::topic::{validate_name, TopicError};
use crate::transport::{Capabilities, Transport};

#[doc(hidden)]
#[linkme::distributed_slice]
pub static EVENTS: [EventDescriptor];

#[doc(hidden)]
#[linkme::distributed_slice]
pub static HANDLERS: [HandlerDescriptor];

/// The events and handlers of a program.
#[derive(Debug, Clone)]
pub struct Registry {
    events: Vec<&'static EventDescriptor>,
    handlers: Vec<&'static HandlerDescriptor>,
}

/// Which registered handlers an app runs.
///
/// ```
/// use eventwire::HandlerSelection;
/// let only_inventory = HandlerSelection::groups(["inventory"]);
/// let two = HandlerSelection::names(["reserve_stock", "release_stock"]);
/// # let _ = (only_inventory, two);
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum HandlerSelection {
    /// Every registered handler (the default).
    #[default]
    All,
    /// No handler: a publisher-only app (an HTTP front end that shares a
    /// crate of handlers with its workers).
    None,
    /// Handlers whose group is one of these.
    Groups(Vec<String>),
    /// Handlers with one of these names.
    Names(Vec<String>),
}

impl HandlerSelection {
    /// Every registered handler.
    pub fn all() -> Self {
        HandlerSelection::All
    }

    /// No handler: the app only publishes.
    pub fn none() -> Self {
        HandlerSelection::None
    }

    /// Handlers of these groups.
    pub fn groups<I: IntoIterator<Item = S>, S: Into<String>>(groups: I) -> Self {
        HandlerSelection::Groups(groups.into_iter().map(Into::into).collect())
    }

    /// Handlers with these names.
    pub fn names<I: IntoIterator<Item = S>, S: Into<String>>(names: I) -> Self {
        HandlerSelection::Names(names.into_iter().map(Into::into).collect())
    }

    fn selects(&self, handler: &HandlerDescriptor, group: &str) -> bool {
        match self {
            HandlerSelection::All => !handler.is_conformance_scenario(),
            HandlerSelection::None => false,
            HandlerSelection::Groups(g) => {
                !handler.is_conformance_scenario() && g.iter().any(|g| g == group)
            }
            HandlerSelection::Names(n) => n.iter().any(|n| n == handler.name),
        }
    }
}

/// One problem found at start-up.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ValidationError {
    /// Two event types claim the same topic.
    #[error("event types `{first}` and `{second}` both use topic `{topic}`; give one of them another `#[event(topic = ...)]`, or, if they are versions of one event, link them with `#[event(upcast_from = ...)]`")]
    DuplicateTopic {
        /// The topic.
        topic: &'static str,
        /// One type.
        first: &'static str,
        /// The other.
        second: &'static str,
    },
    /// Two handlers have the same name.
    #[error("handlers `{first}` and `{second}` are both named `{name}`; set `#[handler(name = \"...\")]` on one of them")]
    DuplicateHandler {
        /// The name.
        name: &'static str,
        /// One function.
        first: &'static str,
        /// The other.
        second: &'static str,
    },
    /// A handler option the transport cannot honour.
    #[error(
        "handler `{handler}`: `{option}` is not supported by the {transport} transport: {reason}"
    )]
    UnsupportedOption {
        /// The handler.
        handler: &'static str,
        /// The option as written.
        option: &'static str,
        /// The transport's kind.
        transport: &'static str,
        /// Why.
        reason: &'static str,
    },
    /// A selected group or name matches no registered handler.
    #[error("handler selection names {what} `{value}`, but no registered handler has it")]
    UnknownSelection {
        /// `group` or `name`.
        what: &'static str,
        /// The value.
        value: String,
    },
    /// The service or a group name cannot be used in subjects and consumer names.
    #[error(transparent)]
    InvalidName(#[from] TopicError),
    /// The idempotency store forgets a completed event before the transport
    /// redelivers one whose acknowledgement was lost: every such copy would
    /// run its handler again.
    #[error("the idempotency store forgets a completed event after {}, sooner than the transport redelivers an unacknowledged one (ack wait {}): keep completed events longer (`InMemoryIdempotency::with_retention`), at least the redelivery horizon (ack wait x attempts)", humantime::format_duration(*.retention), humantime::format_duration(*.ack_wait))]
    IdempotencyRetention {
        /// How long the store keeps a completed event.
        retention: std::time::Duration,
        /// The transport's ack wait.
        ack_wait: std::time::Duration,
    },
    /// A handler takes `State<T>` that was never given to the builder.
    #[error("handler `{handler}` takes `State<{type_name}>`, but no value of that type was given to the builder with `.state(...)`")]
    MissingState {
        /// The handler.
        handler: &'static str,
        /// The type.
        type_name: &'static str,
    },
}

/// Every problem found at start-up, reported together.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidationErrors(pub Vec<ValidationError>);

impl fmt::Display for ValidationErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} start-up problem(s):", self.0.len())?;
        for e in &self.0 {
            write!(f, "\n  - {e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ValidationErrors {}

impl Registry {
    /// Everything linked into this program.
    pub fn global() -> Self {
        Self::from_parts(EVENTS.iter().collect(), HANDLERS.iter().collect())
    }

    /// A registry of the given descriptors (the global one, or a unit
    /// test's), sorted so reports do not depend on link order.
    pub(crate) fn from_parts(
        mut events: Vec<&'static EventDescriptor>,
        mut handlers: Vec<&'static HandlerDescriptor>,
    ) -> Self {
        events.sort_by_key(|e| (e.topic, e.type_path));
        handlers.sort_by_key(|h| (h.name, h.function));
        Registry { events, handlers }
    }

    /// Registered event types.
    pub fn events(&self) -> &[&'static EventDescriptor] {
        &self.events
    }

    /// Registered handlers.
    pub fn handlers(&self) -> &[&'static HandlerDescriptor] {
        &self.handlers
    }

    /// The group a handler runs in for `service`.
    pub fn group_of<'a>(handler: &'a HandlerDescriptor, service: &'a str) -> &'a str {
        handler.options.group.unwrap_or(service)
    }

    /// The handlers `selection` picks for `service`.
    pub fn select<'a>(
        &'a self,
        service: &'a str,
        selection: &'a HandlerSelection,
    ) -> impl Iterator<Item = &'static HandlerDescriptor> + 'a {
        self.handlers
            .iter()
            .copied()
            .filter(move |h| selection.selects(h, Self::group_of(h, service)))
    }

    /// Checks the registry, the selection and the options of the selected
    /// handlers against `transport`; every problem is reported.
    pub fn validate(
        &self,
        transport: &dyn Transport,
        service: &str,
        selection: &HandlerSelection,
    ) -> Result<(), ValidationErrors> {
        self.validate_with(
            transport.kind(),
            transport.capabilities(),
            service,
            selection,
        )
    }

    pub(crate) fn validate_with(
        &self,
        kind: &'static str,
        caps: Capabilities,
        service: &str,
        selection: &HandlerSelection,
    ) -> Result<(), ValidationErrors> {
        let mut errors = Vec::new();
        self.check_topics(&mut errors);
        self.check_handler_names(&mut errors);
        check_selection(self, service, selection, &mut errors);
        if let Err(e) = validate_name("service name", service) {
            errors.push(e.into());
        }
        for h in self.select(service, selection) {
            if let Some(g) = h.options.group {
                if let Err(e) = validate_name("group", g) {
                    errors.push(e.into());
                }
            }
            check_options(h, kind, caps, &mut errors);
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(ValidationErrors(errors))
        }
    }

    /// Rule: one topic, one event type, except for the schema versions of
    /// one event, which share a topic when the newest reaches every older
    /// one through `upcast_from` links.
    fn check_topics(&self, errors: &mut Vec<ValidationError>) {
        let mut by_topic: BTreeMap<&str, Vec<&EventDescriptor>> = BTreeMap::new();
        for e in &self.events {
            let same = by_topic.entry(e.topic).or_default();
            if !same.iter().any(|s| s.type_path == e.type_path) {
                same.push(e);
            }
        }
        for (topic, mut types) in by_topic {
            if types.len() < 2 {
                continue;
            }
            types.sort_by_key(|e| std::cmp::Reverse(e.version));
            let mut chain: BTreeSet<&str> = BTreeSet::new();
            let mut next = Some(types[0]);
            while let Some(e) = next {
                if !chain.insert(e.type_path) {
                    break;
                }
                next = e.upcast_from.map(|f| f());
            }
            for e in &types[1..] {
                if e.version == types[0].version || !chain.contains(e.type_path) {
                    errors.push(ValidationError::DuplicateTopic {
                        topic,
                        first: types[0].type_path,
                        second: e.type_path,
                    });
                }
            }
        }
    }

    /// Rule: handler names are unique in the program (they name consumers).
    fn check_handler_names(&self, errors: &mut Vec<ValidationError>) {
        let mut by_name: BTreeMap<&str, &HandlerDescriptor> = BTreeMap::new();
        for h in &self.handlers {
            match by_name.get(h.name) {
                Some(first) => errors.push(ValidationError::DuplicateHandler {
                    name: h.name,
                    first: first.function,
                    second: h.function,
                }),
                None => {
                    by_name.insert(h.name, h);
                }
            }
        }
    }
}

/// Rule: a selection names only groups and handlers that exist (a typo would
/// otherwise start a service that handles nothing).
fn check_selection(
    registry: &Registry,
    service: &str,
    selection: &HandlerSelection,
    errors: &mut Vec<ValidationError>,
) {
    let (what, wanted, known): (_, &Vec<String>, BTreeSet<&str>) = match selection {
        HandlerSelection::All | HandlerSelection::None => return,
        HandlerSelection::Groups(g) => (
            "group",
            g,
            registry
                .handlers
                .iter()
                .map(|h| Registry::group_of(h, service))
                .collect(),
        ),
        HandlerSelection::Names(n) => (
            "name",
            n,
            registry.handlers.iter().map(|h| h.name).collect(),
        ),
    };
    for value in wanted {
        if !known.contains(value.as_str()) {
            errors.push(ValidationError::UnknownSelection {
                what,
                value: value.clone(),
            });
        }
    }
}

/// Rule: durable consumers and replay need a transport that keeps state.
fn check_options(
    h: &HandlerDescriptor,
    transport: &'static str,
    caps: Capabilities,
    errors: &mut Vec<ValidationError>,
) {
    let unsupported = |option, reason| ValidationError::UnsupportedOption {
        handler: h.name,
        option,
        transport,
        reason,
    };
    if !caps.durable_consumers && matches!(h.options.durable, Durability::Named(_)) {
        errors.push(unsupported(
            "durable",
            "its consumers do not outlive the process; use the jetstream transport",
        ));
    }
    if !caps.replay && h.options.start == Some(StartPosition::All) {
        errors.push(unsupported(
            "start = \"all\"",
            "it keeps no history to replay; use the jetstream transport",
        ));
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::codec::Format;
    use crate::handler::erased::ErasedHandler;
    use crate::handler::{HandlerOptions, MissingState, StateMap};

    const fn event(
        name: &'static str,
        topic: &'static str,
        version: u32,
        upcast_from: Option<fn() -> &'static EventDescriptor>,
    ) -> EventDescriptor {
        EventDescriptor {
            name,
            type_path: name,
            topic,
            version,
            format: Format::Json,
            key_field: None,
            upcast_from,
            fields: &[],
            json_schema: || None,
        }
    }

    fn no_state(_: &StateMap) -> Result<Arc<dyn ErasedHandler>, MissingState> {
        Err(MissingState { type_name: "Db" })
    }

    const fn handler(
        name: &'static str,
        function: &'static str,
        options: HandlerOptions,
    ) -> HandlerDescriptor {
        HandlerDescriptor {
            name,
            function,
            topic: "orders.created",
            event: Some("OrderCreated"),
            options,
            build: no_state,
        }
    }

    static V1: EventDescriptor = event("OrderCreatedV1", "orders.created", 1, None);
    static V2: EventDescriptor = event("OrderCreatedV2", "orders.created", 2, Some(|| &V1));
    static V3: EventDescriptor = event("OrderCreatedV3", "orders.created", 3, Some(|| &V2));
    static UNLINKED_V4: EventDescriptor = event("Stray", "orders.created", 4, None);
    static SAME_VERSION: EventDescriptor = event("Twin", "orders.created", 3, Some(|| &V2));
    static SHIPPED: EventDescriptor = event("Shipped", "orders.shipped", 1, None);

    static RESERVE: HandlerDescriptor = handler("reserve", "inv::reserve", HandlerOptions::DEFAULT);
    static RESERVE_TWIN: HandlerDescriptor =
        handler("reserve", "billing::reserve", HandlerOptions::DEFAULT);
    static BILL: HandlerDescriptor = handler(
        "bill",
        "billing::bill",
        HandlerOptions {
            group: Some("billing"),
            ..HandlerOptions::DEFAULT
        },
    );
    static REPLAY: HandlerDescriptor = handler(
        "replay",
        "audit::replay",
        HandlerOptions {
            start: Some(StartPosition::All),
            durable: Durability::Named("audit-replay"),
            ..HandlerOptions::DEFAULT
        },
    );
    static BAD_GROUP: HandlerDescriptor = handler(
        "bad_group",
        "x::bad_group",
        HandlerOptions {
            group: Some("has space"),
            ..HandlerOptions::DEFAULT
        },
    );

    const DURABLE: Capabilities = Capabilities {
        durable_consumers: true,
        replay: true,
        at_least_once: true,
        max_payload: None,
        queues_outlive_instances: false,
        deduplicates_publishes: true,
        stream_positions: true,
        counts_deliveries: true,
    };
    const EPHEMERAL: Capabilities = Capabilities {
        durable_consumers: false,
        replay: false,
        at_least_once: false,
        max_payload: None,
        queues_outlive_instances: false,
        deduplicates_publishes: false,
        stream_positions: false,
        counts_deliveries: false,
    };

    fn errors(
        registry: &Registry,
        caps: Capabilities,
        selection: HandlerSelection,
    ) -> Vec<ValidationError> {
        match registry.validate_with("test", caps, "shop", &selection) {
            Ok(()) => Vec::new(),
            Err(ValidationErrors(e)) => e,
        }
    }

    #[test]
    fn versions_linked_by_upcast_share_a_topic() {
        let r = Registry::from_parts(vec![&V3, &V1, &V2, &SHIPPED], vec![]);
        assert_eq!(errors(&r, DURABLE, HandlerSelection::All), []);
    }

    #[test]
    fn an_unlinked_type_on_a_used_topic_is_a_duplicate() {
        let r = Registry::from_parts(vec![&V1, &V2, &V3, &UNLINKED_V4], vec![]);
        let e = errors(&r, DURABLE, HandlerSelection::All);
        // The newest (v4) reaches nothing: every older type is reported once.
        assert_eq!(e.len(), 3, "{e:?}");
        assert!(e
            .iter()
            .all(|e| matches!(e, ValidationError::DuplicateTopic { first: "Stray", .. })));
    }

    #[test]
    fn two_types_of_one_version_on_one_topic_are_duplicates() {
        let r = Registry::from_parts(vec![&V1, &V2, &V3, &SAME_VERSION], vec![]);
        let e = errors(&r, DURABLE, HandlerSelection::All);
        assert!(
            e.iter()
                .any(|e| matches!(e, ValidationError::DuplicateTopic { .. })),
            "{e:?}"
        );
    }

    #[test]
    fn handler_names_are_unique() {
        let r = Registry::from_parts(vec![], vec![&RESERVE, &RESERVE_TWIN]);
        assert_eq!(
            errors(&r, DURABLE, HandlerSelection::All),
            [ValidationError::DuplicateHandler {
                name: "reserve",
                first: "billing::reserve",
                second: "inv::reserve",
            }]
        );
    }

    #[test]
    fn selections_name_existing_groups_and_handlers() {
        let r = Registry::from_parts(vec![], vec![&RESERVE, &BILL]);
        assert_eq!(
            errors(&r, DURABLE, HandlerSelection::groups(["billing", "shop"])),
            []
        );
        assert_eq!(errors(&r, DURABLE, HandlerSelection::names(["bill"])), []);
        assert_eq!(
            errors(&r, DURABLE, HandlerSelection::groups(["biling"])),
            [ValidationError::UnknownSelection {
                what: "group",
                value: "biling".into()
            }]
        );
        assert_eq!(
            errors(&r, DURABLE, HandlerSelection::names(["reserv"])),
            [ValidationError::UnknownSelection {
                what: "name",
                value: "reserv".into()
            }]
        );
        assert_eq!(errors(&r, DURABLE, HandlerSelection::none()), []);
        assert_eq!(r.select("shop", &HandlerSelection::none()).count(), 0);
        let billing: Vec<_> = r
            .select("shop", &HandlerSelection::groups(["billing"]))
            .map(|h| h.name)
            .collect();
        assert_eq!(billing, ["bill"]);
    }

    #[test]
    fn conformance_scenarios_run_only_when_named() {
        static SCENARIO: HandlerDescriptor = handler(
            "conformance_charge",
            "eventwire_conformance::scenarios::failures::conformance_charge",
            HandlerOptions {
                group: Some("billing"),
                ..HandlerOptions::DEFAULT
            },
        );
        let r = Registry::from_parts(vec![], vec![&BILL, &SCENARIO]);
        let names = |selection: HandlerSelection| -> Vec<&str> {
            r.select("shop", &selection).map(|h| h.name).collect()
        };
        assert_eq!(names(HandlerSelection::All), ["bill"]);
        assert_eq!(names(HandlerSelection::groups(["billing"])), ["bill"]);
        assert_eq!(
            names(HandlerSelection::names(["conformance_charge"])),
            ["conformance_charge"]
        );
        assert!(SCENARIO.is_conformance_scenario());
        assert!(!BILL.is_conformance_scenario());
    }

    #[test]
    fn durable_and_replay_need_a_transport_that_keeps_state() {
        let r = Registry::from_parts(vec![], vec![&REPLAY]);
        assert_eq!(errors(&r, DURABLE, HandlerSelection::All), []);
        let e = errors(&r, EPHEMERAL, HandlerSelection::All);
        let options: Vec<_> = e
            .iter()
            .map(|e| match e {
                ValidationError::UnsupportedOption { option, .. } => *option,
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(options, ["durable", "start = \"all\""]);
        // Only selected handlers are checked.
        assert_eq!(errors(&r, EPHEMERAL, HandlerSelection::none()), []);
    }

    #[test]
    fn service_and_group_names_must_fit_subjects() {
        let r = Registry::from_parts(vec![], vec![&BAD_GROUP]);
        let e = errors(&r, DURABLE, HandlerSelection::All);
        assert!(
            matches!(e.as_slice(), [ValidationError::InvalidName(_)]),
            "{e:?}"
        );
        let e = match r.validate_with("test", DURABLE, "my shop", &HandlerSelection::none()) {
            Err(ValidationErrors(e)) => e,
            Ok(()) => panic!("a service name with a space passed"),
        };
        assert!(
            matches!(e.as_slice(), [ValidationError::InvalidName(_)]),
            "{e:?}"
        );
    }

    #[test]
    fn every_problem_is_reported_at_once() {
        let r = Registry::from_parts(
            vec![&V1, &UNLINKED_V4],
            vec![&RESERVE, &RESERVE_TWIN, &REPLAY, &BAD_GROUP],
        );
        let e = errors(&r, EPHEMERAL, HandlerSelection::All);
        assert_eq!(e.len(), 5, "{e:#?}");
    }
}
