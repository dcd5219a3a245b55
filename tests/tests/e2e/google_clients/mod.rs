//! The product's Google clients against the sandbox over real HTTP: Calendar, People, quotas, Google's stricter rules.

mod calendar;
mod people;
mod quotas;
mod strict;
