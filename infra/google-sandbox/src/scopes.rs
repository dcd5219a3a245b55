//! Which OAuth scopes each API method accepts (from the discovery documents).

pub const PREFIX: &str = "https://www.googleapis.com/auth/";

pub const CALENDAR_LIST: &[&str] = &[
    "calendar",
    "calendar.calendarlist",
    "calendar.calendarlist.readonly",
    "calendar.readonly",
];
pub const CALENDARS_GET: &[&str] = &[
    "calendar",
    "calendar.app.created",
    "calendar.calendars",
    "calendar.calendars.readonly",
    "calendar.readonly",
];
pub const COLORS: &[&str] = &[
    "calendar",
    "calendar.app.created",
    "calendar.calendarlist",
    "calendar.calendarlist.readonly",
    "calendar.events.freebusy",
    "calendar.events.owned",
    "calendar.events.owned.readonly",
    "calendar.events.public.readonly",
    "calendar.readonly",
];
pub const EVENTS_READ: &[&str] = &[
    "calendar",
    "calendar.app.created",
    "calendar.events",
    "calendar.events.freebusy",
    "calendar.events.owned",
    "calendar.events.owned.readonly",
    "calendar.events.public.readonly",
    "calendar.events.readonly",
    "calendar.readonly",
];
pub const EVENTS_WRITE: &[&str] = &[
    "calendar",
    "calendar.app.created",
    "calendar.events",
    "calendar.events.owned",
];
/// `events.move` (its discovery entry lists no `calendar.app.created`).
pub const EVENTS_MOVE: &[&str] = &["calendar", "calendar.events", "calendar.events.owned"];
pub const CHANNELS_STOP: &[&str] = &[
    "calendar",
    "calendar.app.created",
    "calendar.calendarlist",
    "calendar.calendarlist.readonly",
    "calendar.events",
    "calendar.events.freebusy",
    "calendar.events.owned",
    "calendar.events.owned.readonly",
    "calendar.events.public.readonly",
    "calendar.events.readonly",
    "calendar.readonly",
];
/// `freebusy.query`.
pub const FREEBUSY: &[&str] = &[
    "calendar",
    "calendar.events.freebusy",
    "calendar.freebusy",
    "calendar.readonly",
];
pub const CONTACTS_READ: &[&str] = &["contacts", "contacts.readonly"];
pub const CONTACTS_WRITE: &[&str] = &["contacts"];
pub const USERINFO: &[&str] = &["openid", "userinfo.email", "userinfo.profile"];

/// Expands the short names Google accepts at the authorization endpoint.
pub fn normalize(scope: &str) -> String {
    match scope {
        "email" => format!("{PREFIX}userinfo.email"),
        "profile" => format!("{PREFIX}userinfo.profile"),
        "openid" => "openid".to_string(),
        other => other.to_string(),
    }
}

/// Whether `granted` (full scope URLs) contains any of `accepted` (short names).
pub fn allows<'a>(mut granted: impl Iterator<Item = &'a String>, accepted: &[&str]) -> bool {
    granted.any(|g| {
        let short = g.strip_prefix(PREFIX).unwrap_or(g);
        accepted.contains(&short)
    })
}
