//! The durable core between inbound and outbound traffic. For now: the inbox processor, which
//! works through the events Synapse delivered, room by room in arrival order.

pub mod inbox;
