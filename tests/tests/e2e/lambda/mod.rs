//! The functions as Lambda runs them: API Gateway and SQS events, and the scheduler with the worker.

mod events;
mod scheduler;
