//! Calendar two-way sync, the feature's one folder: the CRM's event model ([`model`]), the
//! normalized form both sides are compared in ([`normal`]), the CRM's side of it ([`api`]:
//! record pushes, the pair's state, acknowledgements, "sync now"), availability for
//! scheduling ([`availability`], over Google's `freebusy.query`), the passes that talk to
//! Google ([`sync`], over the shared core [`crate::sync`]), push channels ([`channels`]), one
//! event id in several calendars ([`born`]) and the move to a new main calendar ([`rehome`]).

pub mod api;
pub mod availability;
pub mod born;
pub mod channels;
pub mod model;
pub mod normal;
pub mod rehome;
pub mod sync;
