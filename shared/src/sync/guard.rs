//! The mass-deletion guard: a pass stops before deleting when Google reports the end of too
//! many of a scope's live pairs at once (a calendar, the contact group) — at least
//! [`MASS_DELETION_MIN`] of them and at least [`MASS_DELETION_SHARE`] of what the scope
//! holds. Deletions are counted over the whole read, page after page, so a burst spread over
//! pages is held back like one on a single page; nothing is deleted until the CRM confirms.
//! Pure: the read feeds it counts, it says whether to hold back.

/// A pass stops deleting and reports when it would delete at least this many of a scope's
/// pairs…
pub const MASS_DELETION_MIN: usize = 25;
/// …and at least this share of them.
pub const MASS_DELETION_SHARE: f64 = 0.3;

/// The deletions one read has let through so far.
#[derive(Debug, Clone, Copy, Default)]
pub struct Guard {
    confirmed: bool,
    passed: usize,
}

impl Guard {
    /// `confirmed`: the CRM confirmed the deletions (the guard lets everything through).
    pub fn new(confirmed: bool) -> Self {
        Guard {
            confirmed,
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
        !self.confirmed && more > 0 && self.passed + more >= MASS_DELETION_MIN
    }

    /// Whether `more` deletions, with those let through before, are too many of `live`.
    pub fn holds(&self, more: usize, live: usize) -> bool {
        let total = self.passed + more;
        self.needs_count(more) && total as f64 >= MASS_DELETION_SHARE * live as f64
    }

    /// The deletions this read has counted with `more` (for the report).
    pub fn total(&self, more: usize) -> usize {
        self.passed + more
    }

    /// `more` deletions go ahead.
    pub fn pass(&mut self, more: usize) {
        self.passed += more;
    }
}

/// Whether the account's `last_error` already tells of a block of `scope`.
pub fn already_told(last_error: Option<&str>, scope: &str) -> bool {
    last_error.is_some_and(|e| e.starts_with(&format!("{scope}: ")) && e.contains("held back"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn few_deletions_pass_without_counting() {
        let g = Guard::new(false);
        assert!(!g.needs_count(0));
        assert!(!g.needs_count(MASS_DELETION_MIN - 1));
        assert!(!g.holds(MASS_DELETION_MIN - 1, 30));
        assert!(g.needs_count(MASS_DELETION_MIN));
    }

    #[test]
    fn many_deletions_of_a_large_share_are_held_back() {
        let g = Guard::new(false);
        assert!(g.holds(25, 80), "25 of 80 is above 30 %");
        assert!(!g.holds(25, 100), "25 of 100 is below 30 %");
        assert!(g.holds(30, 100));
    }

    #[test]
    fn a_burst_spread_over_pages_counts_as_one() {
        let mut g = Guard::new(false);
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
    fn a_confirmed_pass_deletes_everything() {
        let g = Guard::new(true);
        assert!(!g.watching());
        assert!(!g.needs_count(1000));
        assert!(!g.holds(1000, 1000));
    }

    #[test]
    fn a_block_is_told_once_per_scope() {
        let told =
            "calendar primary: 30 deletions held back (of 40 events); confirm to carry them out";
        assert!(already_told(Some(told), "calendar primary"));
        assert!(!already_told(Some(told), "calendar team"));
        assert!(!already_told(Some(told), "contacts"));
        assert!(!already_told(
            Some("calendar primary: Google answered 404"),
            "calendar primary"
        ));
        assert!(!already_told(None, "contacts"));
    }
}
