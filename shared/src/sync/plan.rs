//! What one pass sends to Google: as many waiting writes as fit in the calls the job has
//! left, in whole batch requests. The rest waits for the next job, so a backlog of N writes
//! drains in about ⌈N / batch size⌉ batch requests whatever the per-job cap, and no job sends
//! a write it cannot commit (a write refused half-way through a pass would be sent again by
//! the next one). [`batches`] lays the plan out in batch requests of each kind.

/// What one waiting write costs, in Google calls (a batch request counts each part).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct WriteCost {
    /// Its parts in a batch request (one for a create, an update or a delete).
    pub parts: u32,
    /// Calls expected after the batch answered: a recurring series re-reads its occurrences
    /// and writes those that differ.
    pub followups: u32,
    /// Calls deciding the write took before it was planned (a series edit first checks
    /// Google's occurrences): counted against what a job collects, not against the calls
    /// left to send it (they are spent already).
    pub planning: u32,
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

/// A kind of batch request a collection sends (the Calendar batch endpoint; People's
/// `batchCreateContacts`, `batchUpdateContacts`, `batchDeleteContacts`, group changes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchKind {
    /// Writes per request.
    pub limit: usize,
    /// Whether each part is a call of its own (Calendar's batch endpoint counts every part
    /// against the quota), or the request is one call whatever it carries (People).
    pub per_part: bool,
}

/// One batch request of the plan: its kind and the writes it carries (indices into the
/// waiting writes, in order).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Batch {
    pub kind: usize,
    pub items: Vec<usize>,
}

/// Which of the waiting writes (`(kind, cost)` each, in the order they were collected) a
/// pass with `allowance` calls left sends, in which batch requests. Pure.
///
/// Writes go in batches of their kind (in the order of `kinds`, each kind's writes in their
/// order), up to the kind's limit. A batch request is sent whole or not at all once one
/// request went ahead (a part-filled request costs a request for fewer writes; the next job
/// sends them in a full one); the first request is cut to what fits, and at least one write
/// goes whenever any call is left (see [`fits`]). The writes in no batch stay waiting.
pub fn batches(writes: &[(usize, WriteCost)], kinds: &[BatchKind], allowance: u32) -> Vec<Batch> {
    let budget = u64::from(allowance).saturating_sub(u64::from(SLACK));
    let mut used = 0u64;
    let mut out: Vec<Batch> = Vec::new();
    for (k, kind) in kinds.iter().enumerate() {
        let of_kind: Vec<usize> = (0..writes.len()).filter(|&i| writes[i].0 == k).collect();
        for chunk in of_kind.chunks(kind.limit.max(1)) {
            let cost = |items: &[usize]| -> u64 {
                let followups: u64 = items
                    .iter()
                    .map(|&i| u64::from(writes[i].1.followups))
                    .sum();
                if kind.per_part {
                    items.iter().map(|&i| writes[i].1.total()).sum()
                } else {
                    1 + followups
                }
            };
            let whole = cost(chunk);
            if used + whole <= budget {
                used += whole;
                out.push(Batch {
                    kind: k,
                    items: chunk.to_vec(),
                });
                continue;
            }
            if out.is_empty() && allowance > 0 {
                // Not even the first request fits: send what does, at least one write.
                let mut n = if kind.per_part { 0 } else { chunk.len() };
                while n < chunk.len() && used + cost(&chunk[..=n]) <= budget {
                    n += 1;
                }
                out.push(Batch {
                    kind: k,
                    items: chunk[..n.max(1)].to_vec(),
                });
            }
            return out;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const CALENDAR: [BatchKind; 1] = [BatchKind {
        limit: 50,
        per_part: true,
    }];

    fn sizes(b: &[Batch]) -> Vec<(usize, usize)> {
        b.iter().map(|b| (b.kind, b.items.len())).collect()
    }

    #[test]
    fn calendar_batches_cut_like_fits() {
        for (n, allowance) in [
            (120, u32::MAX),
            (120, 200),
            (10_000, 200),
            (10_000, 30),
            (3, 1),
        ] {
            let costs = plain(n);
            let writes: Vec<(usize, WriteCost)> = costs.iter().map(|c| (0, *c)).collect();
            let planned = batches(&writes, &CALENDAR, allowance);
            let sent: usize = planned.iter().map(|b| b.items.len()).sum();
            assert_eq!(
                sent,
                fits(&costs, allowance, 50),
                "{n} writes, {allowance} calls"
            );
            assert!(planned.iter().all(|b| b.items.len() <= 50));
        }
        assert_eq!(batches(&[], &CALENDAR, 200), vec![]);
    }

    #[test]
    fn people_requests_cost_one_call_whatever_they_carry() {
        // create 200, update 200, delete 500: 1,000 creates are 5 requests.
        let kinds = [
            BatchKind {
                limit: 200,
                per_part: false,
            },
            BatchKind {
                limit: 200,
                per_part: false,
            },
            BatchKind {
                limit: 500,
                per_part: false,
            },
        ];
        let mut writes: Vec<(usize, WriteCost)> = plain(1000).into_iter().map(|c| (0, c)).collect();
        assert_eq!(sizes(&batches(&writes, &kinds, 200)), vec![(0, 200); 5]);
        // Kinds go in their order, each kind's writes in theirs, whatever the collection order.
        writes.truncate(3);
        writes.push((
            2,
            WriteCost {
                parts: 1,
                followups: 0,
                planning: 0,
            },
        ));
        writes.push((
            1,
            WriteCost {
                parts: 1,
                followups: 0,
                planning: 0,
            },
        ));
        writes.push((
            0,
            WriteCost {
                parts: 1,
                followups: 0,
                planning: 0,
            },
        ));
        let planned = batches(&writes, &kinds, 200);
        assert_eq!(
            planned,
            vec![
                Batch {
                    kind: 0,
                    items: vec![0, 1, 2, 5]
                },
                Batch {
                    kind: 1,
                    items: vec![4]
                },
                Batch {
                    kind: 2,
                    items: vec![3]
                },
            ]
        );
        // 5 calls left (2 kept in hand): 3 requests; what is in none stays waiting.
        let writes: Vec<(usize, WriteCost)> = plain(2000).into_iter().map(|c| (0, c)).collect();
        assert_eq!(sizes(&batches(&writes, &kinds, 5)), vec![(0, 200); 3]);
        // One call left: still one request, so the backlog moves.
        assert_eq!(sizes(&batches(&writes, &kinds, 1)), vec![(0, 200)]);
        assert_eq!(batches(&writes, &kinds, 0), vec![]);
    }

    fn plain(n: usize) -> Vec<WriteCost> {
        vec![
            WriteCost {
                parts: 1,
                followups: 0,
                planning: 0,
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
            planning: 0,
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
            planning: 0,
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
