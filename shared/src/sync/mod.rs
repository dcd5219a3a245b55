//! The sync core both collections share (calendar events, contacts): the parts of a pass
//! that do not depend on what is synced. Today: planning a pass's writes within its Google
//! call budget ([`plan`]).

pub mod plan;
