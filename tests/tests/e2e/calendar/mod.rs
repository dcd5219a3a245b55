//! Calendar two-way sync end to end: passes, push, progress, fidelity, series, RSVPs, copies, deletions, settings changes, availability, tasks.

mod availability;
mod convergence;
mod event_copies;
mod fidelity;
mod html;
mod mass_deletions;
mod progress;
mod push;
mod rsvp;
mod series_edits;
mod settings_changes;
mod sync;
mod tasks;
mod watch;
