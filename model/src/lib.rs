//! rmq-model: the system under test. Every RocketMQ decision lives here as I/O-free
//! code: no clock, no threads, no randomness of its own, no sockets, no files — only
//! the [`store::Disk`] trait and the node context ([`node::Ctx`]).
#![forbid(unsafe_code)]

pub mod admin;
pub mod broker;
pub mod client;
pub mod hasher;
pub mod message;
pub mod message_queue;
pub mod namesrv;
pub mod node;
pub mod protocol;
pub mod store;
pub mod subscription;
