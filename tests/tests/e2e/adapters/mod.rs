//! Adapters held to their ports: the store conformance suite on every table, and the AWS adapters (Secrets Manager, SQS FIFO) on moto.

mod aws;
mod store_conformance;
