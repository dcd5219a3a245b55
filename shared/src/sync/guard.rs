//! The mass-deletion guard: a pass stops before deleting when too many of a scope's live
//! pairs would end at once (a calendar, the contact group; or, the other way, the CRM's
//! deletions of a collection) — at least [`MASS_DELETION_MIN`] of them and at least
//! [`MASS_DELETION_SHARE`] of what the scope holds. Deletions are counted over the whole
//! read, page after page, and over the passes of the last [`MASS_DELETION_WINDOW`] (kept with
//! the scope's cursor, see [`Window`]), so a burst spread over pages, or a trickle of one
//! deletion per push job, is held back like one on a single page; nothing is deleted until the
//! CRM confirms. Pure: the read feeds it counts, it says whether to hold back.

use time::{Duration, OffsetDateTime};

/// A pass stops deleting and reports when it would delete at least this many of a scope's
/// pairs…
pub const MASS_DELETION_MIN: usize = 25;
/// …and at least this share of them…
pub const MASS_DELETION_SHARE: f64 = 0.3;
/// …counting the deletions let through in this long before it.
pub const MASS_DELETION_WINDOW: Duration = Duration::hours(1);

pub use crate::domain::cursor::Window;

impl Window {
    /// The deletions that still count at `now`.
    pub fn earlier(window: Option<&Window>, now: OffsetDateTime) -> usize {
        window
            .filter(|w| now - w.since < MASS_DELETION_WINDOW)
            .map_or(0, |w| w.count)
    }

    /// `window` after `n` more deletions at `now` (a window past its time starts over).
    pub fn note(window: Option<Window>, n: usize, now: OffsetDateTime) -> Option<Window> {
        if n == 0 {
            return window;
        }
        match window.filter(|w| now - w.since < MASS_DELETION_WINDOW) {
            Some(w) => Some(Window {
                since: w.since,
                count: w.count + n,
            }),
            None => Some(Window {
                since: now,
                count: n,
            }),
        }
    }
}

/// The deletions one read (or push) has let through so far, on top of the scope's recent
/// ones.
#[derive(Debug, Clone, Copy, Default)]
pub struct Guard {
    confirmed: bool,
    /// Let through by earlier passes within the window (no longer live).
    earlier: usize,
    passed: usize,
}

impl Guard {
    /// `confirmed`: the CRM confirmed the deletions (the guard lets everything through);
    /// `earlier`: the deletions the scope let through within the window before this pass.
    pub fn new(confirmed: bool, earlier: usize) -> Self {
        Guard {
            confirmed,
            earlier,
            passed: 0,
        }
    }

    /// Whether the pairs a page would end are worth counting at all.
    pub fn watching(&self) -> bool {
        !self.confirmed
    }

    /// Whether `more` deletions on top of those let through may be held back, so the
    /// scope's live pairs must be counted (a store scan spared below the minimum).
    pub fn needs_count(&self, more: usize) -> bool {
        !self.confirmed && more > 0 && self.total(more) >= MASS_DELETION_MIN
    }

    /// Whether `more` deletions, with those let through before, are too many of what the
    /// scope held: `live` now, and those deleted earlier within the window.
    pub fn holds(&self, more: usize, live: usize) -> bool {
        let held = live + self.earlier;
        self.needs_count(more) && self.total(more) as f64 >= MASS_DELETION_SHARE * held as f64
    }

    /// The deletions counted with `more` (for the report).
    pub fn total(&self, more: usize) -> usize {
        self.earlier + self.passed + more
    }

    /// `more` deletions go ahead.
    pub fn pass(&mut self, more: usize) {
        self.passed += more;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn few_deletions_pass_without_counting() {
        let g = Guard::new(false, 0);
        assert!(!g.needs_count(0));
        assert!(!g.needs_count(MASS_DELETION_MIN - 1));
        assert!(!g.holds(MASS_DELETION_MIN - 1, 30));
        assert!(g.needs_count(MASS_DELETION_MIN));
    }

    #[test]
    fn many_deletions_of_a_large_share_are_held_back() {
        let g = Guard::new(false, 0);
        assert!(g.holds(25, 80), "25 of 80 is above 30 %");
        assert!(!g.holds(25, 100), "25 of 100 is below 30 %");
        assert!(g.holds(30, 100));
    }

    #[test]
    fn a_burst_spread_over_pages_counts_as_one() {
        let mut g = Guard::new(false, 0);
        // 40 live pairs; 10 deleted per page: the third page reaches 30 (75 %).
        for _ in 0..2 {
            assert!(!g.holds(10, 40));
            g.pass(10);
        }
        assert!(g.holds(10, 40));
        assert_eq!(g.total(10), 30);
        // A page with no deletion of its own is never held back.
        assert!(!g.holds(0, 40));
    }

    #[test]
    fn a_trickle_over_passes_counts_as_a_burst_within_the_window() {
        let t0 = OffsetDateTime::UNIX_EPOCH + Duration::days(1);
        // 40 pairs; one deleted per pass, a minute apart.
        let mut window = None;
        let mut live = 40;
        let mut let_through = 0;
        for i in 0..40 {
            let now = t0 + Duration::minutes(i);
            let g = Guard::new(false, Window::earlier(window.as_ref(), now));
            if g.holds(1, live) {
                break;
            }
            window = Window::note(window, 1, now);
            live -= 1;
            let_through += 1;
        }
        assert_eq!(let_through, MASS_DELETION_MIN - 1, "the 25th is held back");
        // An hour after the first, the count starts over.
        let later = t0 + MASS_DELETION_WINDOW;
        assert_eq!(Window::earlier(window.as_ref(), later), 0);
        assert_eq!(
            Window::note(window, 1, later),
            Some(Window {
                since: later,
                count: 1
            })
        );
        assert_eq!(Window::note(window, 0, later), window);
    }

    #[test]
    fn a_confirmed_pass_deletes_everything() {
        let g = Guard::new(true, 1000);
        assert!(!g.watching());
        assert!(!g.needs_count(1000));
        assert!(!g.holds(1000, 1000));
    }
}
