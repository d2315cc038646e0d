//! The gRPC adapter: generated code, conversions, the error mapping, authentication and the
//! `CommentFilter` service. Thin by design: every handler authenticates, converts the proto
//! message into a domain input (a missing or bad field is INVALID_ARGUMENT naming it), calls
//! [`crate::app::App`], and converts the outcome back. [`endpoint`] is the client side's one
//! address form.

pub mod convert;
pub mod endpoint;
pub mod service;
pub mod status;

/// Code generated from `proto/hamgate/v1/filter.proto`.
#[allow(missing_docs, clippy::all, clippy::pedantic)]
pub mod pb {
    tonic::include_proto!("hamgate.v1");

    /// The encoded file descriptor set, for server reflection.
    pub const FILE_DESCRIPTOR_SET: &[u8] =
        include_bytes!(concat!(env!("OUT_DIR"), "/hamgate_descriptor.bin"));
}

pub use service::FilterService;
