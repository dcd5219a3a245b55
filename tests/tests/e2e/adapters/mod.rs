//! Adapters held to their ports: one conformance suite per port (store, secrets, queue), each
//! written once and run on the embedded adapter and the AWS one; and what only the AWS
//! adapters do (Secrets Manager's prefix and cache, SQS FIFO's groups), on moto.

mod aws;
mod queue_conformance;
mod secrets_conformance;
mod store_conformance;
