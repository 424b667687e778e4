// Each service uses only some of the shared events.
#![allow(dead_code)]

//! Events shared by the three services of the multi-process example.

use eventwire::prelude::*;

/// Published by the orders service.
#[derive(Debug, Clone, Serialize, Deserialize, Event)]
#[event(topic = "shop.order-placed")]
pub struct OrderPlaced {
    /// Order id; orders of one id are handled in order.
    #[event(key)]
    pub order_id: String,
    /// What was ordered.
    pub sku: String,
    /// How many.
    pub quantity: u32,
}

/// Published by the inventory service once stock is reserved.
#[derive(Debug, Clone, Serialize, Deserialize, Event)]
#[event(topic = "shop.stock-reserved")]
pub struct StockReserved {
    /// The order.
    #[event(key)]
    pub order_id: String,
    /// Units reserved.
    pub quantity: u32,
}
