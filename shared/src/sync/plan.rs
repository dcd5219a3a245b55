//! What one pass sends to Google: as many waiting writes as fit in the calls the job has
//! left, in whole batch requests. The rest waits for the next job, so a backlog of N writes
//! drains in about ⌈N / batch size⌉ batch requests whatever the per-job cap, and no job sends
//! a write it cannot commit (a write refused half-way through a pass would be sent again by
//! the next one).

/// What one waiting write costs, in Google calls (a batch request counts each part).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct WriteCost {
    /// Its parts in a batch request (one for a create, an update or a delete).
    pub parts: u32,
    /// Calls expected after the batch answered: a recurring series re-reads its occurrences
    /// and writes those that differ.
    pub followups: u32,
}

impl WriteCost {
    pub fn total(self) -> u64 {
        u64::from(self.parts) + u64::from(self.followups)
    }
}

/// Calls a pass keeps in hand beyond its plan, for the answers that need one more call
/// (a 409 or 412 settled alone).
pub const SLACK: u32 = 2;

/// How many of `costs` (the waiting writes, in the order they are sent) a pass with
/// `allowance` calls left sends in batch requests of `batch` parts. Pure.
///
/// * Everything fits: all of it.
/// * Cut short by the allowance: whole batches only (a part-filled batch costs a request for
///   fewer writes; the next job sends them in a full one), unless not even one batch fits.
/// * At least one write whenever there is one and any call is left, so a write heavier than
///   the whole allowance (a series with many occurrence edits) still makes progress: its
///   follow-ups that are refused keep it waiting, and the next job goes on from there.
pub fn fits(costs: &[WriteCost], allowance: u32, batch: usize) -> usize {
    let budget = u64::from(allowance).saturating_sub(u64::from(SLACK));
    let mut used = 0u64;
    let mut n = 0usize;
    for c in costs {
        if used + c.total() > budget {
            break;
        }
        used += c.total();
        n += 1;
    }
    if n < costs.len() && n >= batch && batch > 0 {
        n -= n % batch;
    }
    if n == 0 && !costs.is_empty() && allowance > 0 {
        n = 1;
    }
    n
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plain(n: usize) -> Vec<WriteCost> {
        vec![
            WriteCost {
                parts: 1,
                followups: 0
            };
            n
        ]
    }

    #[test]
    fn everything_fits_in_a_large_allowance() {
        assert_eq!(fits(&plain(120), u32::MAX, 50), 120);
        assert_eq!(fits(&plain(120), 200, 50), 120);
        assert_eq!(fits(&[], 200, 50), 0);
    }

    #[test]
    fn a_cut_keeps_whole_batches() {
        // 200 calls left: 198 writes would fit, sent as 150 in three full batches.
        assert_eq!(fits(&plain(10_000), 200, 50), 150);
        // Fewer than a batch fits: send what fits.
        assert_eq!(fits(&plain(10_000), 30, 50), 28);
    }

    #[test]
    fn follow_ups_count_against_the_allowance() {
        let mut costs = plain(10);
        costs[3] = WriteCost {
            parts: 1,
            followups: 40,
        };
        // 3 plain writes (3) + the series (41) = 44; each later write one more.
        assert_eq!(fits(&costs, 46, 50), 4, "44 usable");
        assert_eq!(fits(&costs, 47, 50), 5, "45 usable");
        assert_eq!(
            fits(&costs, 45, 50),
            3,
            "43 usable: the series does not fit"
        );
    }

    #[test]
    fn one_write_always_goes_when_any_call_is_left() {
        let heavy = [WriteCost {
            parts: 1,
            followups: 500,
        }];
        assert_eq!(fits(&heavy, 200, 50), 1);
        assert_eq!(fits(&heavy, 0, 50), 0);
    }

    #[test]
    fn a_backlog_drains_in_about_n_over_batch_requests() {
        // Jobs of 200 calls, one of them spent on the read: the batch requests needed for
        // 10,000 writes stay within 5 % of ⌈10,000 / 50⌉.
        let (mut left, mut requests) = (10_000usize, 0usize);
        while left > 0 {
            let n = fits(&plain(left), 199, 50);
            requests += n.div_ceil(50);
            left -= n;
        }
        assert!(requests <= 210, "{requests} batch requests");
    }
}
