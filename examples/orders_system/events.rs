// Each of the three binaries uses only some of these events and fields.
#![allow(dead_code)]

//! Events shared by the orders system: three services in three processes
//! (`orders_service`, `inventory_service`, `email_service`) talking over
//! NATS JetStream. Each binary includes this file with
//! `#[path = "orders_system/events.rs"] mod events;`, so all three agree on
//! the topics, versions and payloads.

use eventwire::prelude::*;

/// Published by the orders service for every order a customer places.
#[derive(Debug, Clone, Serialize, Deserialize, Event)]
#[event(topic = "orders.placed", version = 1)]
pub struct OrderPlaced {
    /// The order; events of one order share this ordering key.
    #[event(key)]
    pub order_id: String,
    /// Who placed it.
    pub customer: String,
    /// What was ordered.
    pub sku: String,
    /// How many units.
    pub quantity: u32,
}

/// Published by the inventory service once it reserved an order's stock.
#[derive(Debug, Clone, Serialize, Deserialize, Event)]
#[event(topic = "inventory.stock-reserved", version = 1)]
pub struct StockReserved {
    /// The order.
    #[event(key)]
    pub order_id: String,
    /// Who placed it (carried along so the email service needs no lookup).
    pub customer: String,
    /// What was reserved.
    pub sku: String,
    /// How many units were reserved.
    pub quantity: u32,
    /// Units of `sku` left after this reservation.
    pub remaining: u32,
}

/// Published by the email service once the confirmation went out.
#[derive(Debug, Clone, Serialize, Deserialize, Event)]
#[event(topic = "email.order-confirmation-sent", version = 1)]
pub struct OrderConfirmationSent {
    /// The order.
    #[event(key)]
    pub order_id: String,
    /// Where the confirmation was sent.
    pub recipient: String,
}

/// The SKUs the orders service picks from; the inventory service stocks them.
pub const SKUS: [&str; 3] = ["blue-mug", "red-kettle", "green-teapot"];
