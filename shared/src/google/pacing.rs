//! Pacing of Google calls, so one busy account cannot starve the others and a tenant (one
//! Google Cloud project, one quota) slows down before Google starts refusing.
//!
//! A [`Pacer`] is set around a unit of work (the worker's job) with [`paced`]; every Google
//! REST request made inside it passes [`admit`] first (`Google::send_weighted`), weighted by
//! what Google's quota counts (a batch request counts each part). Two limits:
//!
//! * **Per account**: at most `cap` calls per job. Past it the call is refused with
//!   [`GoogleError::Paced`]`(`[`Pace::Account`]`)` before anything is sent; the engine stops
//!   there (its page checkpoints and idempotent writes make that as safe as a deadline), and
//!   the worker queues the rest as a continuation job, which goes behind the jobs of every
//!   other account already queued.
//! * **Per tenant**: a [`Budget`] (a token bucket in the store, `services::quota`), taken from
//!   in reservations so the store sees a write per reservation, not per call; what a job
//!   reserved but did not use is given back by [`Pacer::finish`]. An empty bucket refuses
//!   with [`Pace::Tenant`] and how long until it refills; the worker defers the account.
//!   A job's first reservation is the calls it expects to make when nothing changed
//!   ([`Pacer::expecting`]: an idle pass lists each calendar and the contacts once), so an
//!   idle job uses it up and has nothing to give back: one bucket write, not two. Every call
//!   is still reserved before it is sent, so the tenant's rate holds exactly as before.
//!
//! Outside a pacer (the HTTP API's live calendar list, the OAuth flows) calls are not paced.
//!
//! The pacer is the state of one job, not of the process: it lives in a task-local scope
//! around the job's passes (set by the worker, the one caller of [`paced`]), not in the
//! [`App`](crate::app::App) — two jobs running side by side in one App (the local server)
//! each have their own cap and their own reservation.

use super::GoogleError;
use async_trait::async_trait;
use std::future::Future;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Why a call was not made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pace {
    /// The account used its calls for this job.
    Account,
    /// The tenant's budget is spent; it has room again after `retry_in`.
    Tenant { retry_in: Duration },
    /// Google refused the call for a quota that does not come back within a retry:
    /// `daily` — the project's (the tenant's) daily quota (`dailyLimitExceeded`, reset at
    /// midnight Pacific); otherwise the user's Calendar usage limits (`quotaExceeded`: the
    /// calendar is read-only for a while, "within several hours"). The account waits
    /// `retry_in`, then tries once again.
    Quota { retry_in: Duration, daily: bool },
}

impl std::fmt::Display for Pace {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Pace::Account => f.write_str("the account's Google calls for this run are used up"),
            Pace::Tenant { retry_in } => write!(
                f,
                "the tenant's Google call budget is spent (room again in {} s)",
                retry_in.as_secs()
            ),
            Pace::Quota {
                retry_in,
                daily: true,
            } => write!(
                f,
                "Google's daily quota for the tenant's project is used up (it resets at midnight Pacific; trying again in {} s)",
                retry_in.as_secs()
            ),
            Pace::Quota {
                retry_in,
                daily: false,
            } => write!(
                f,
                "Google's usage limits for this calendar are exceeded (trying again in {} s)",
                retry_in.as_secs()
            ),
        }
    }
}

/// What a budget granted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Grant {
    pub granted: u32,
    /// When nothing was granted: how long until there is room.
    pub retry_in: Duration,
}

/// A shared allowance of Google calls (the tenant's).
#[async_trait]
pub trait Budget: Send + Sync {
    /// Takes up to `n` calls.
    async fn take(&self, n: u32) -> Grant;
    /// Returns calls taken but not used.
    async fn give_back(&self, n: u32);
}

/// The pacing of one unit of work.
pub struct Pacer {
    cap: u32,
    reserve: u32,
    /// The size of the first reservation (0: `reserve`).
    first: u32,
    calls: AtomicU32,
    budget: Option<Arc<dyn Budget>>,
    held: tokio::sync::Mutex<Held>,
}

/// What a job holds of its tenant's budget.
#[derive(Debug, Default, Clone, Copy)]
struct Held {
    /// Reserved and not used yet.
    calls: u32,
    /// Whether the job reserved before.
    reserved: bool,
}

impl Pacer {
    /// At most `cap` calls; with a budget, reserved `reserve` at a time.
    pub fn new(cap: u32, budget: Option<Arc<dyn Budget>>, reserve: u32) -> Self {
        Self {
            cap: cap.max(1),
            reserve: reserve.max(1),
            first: 0,
            calls: AtomicU32::new(0),
            budget,
            held: tokio::sync::Mutex::new(Held::default()),
        }
    }

    /// The job expects `calls` calls when nothing changed: its first reservation is that
    /// many (used up by an idle job, which then gives nothing back).
    pub fn expecting(mut self, calls: u32) -> Self {
        self.first = calls;
        self
    }

    /// Pure: how many calls to reserve for a call of `weight` (`held` of them held).
    fn reservation(&self, held: Held, weight: u32) -> u32 {
        let size = match (held.reserved, self.first) {
            (false, first) if first > 0 => first,
            _ => self.reserve,
        };
        size.max(weight - held.calls)
    }

    /// Calls admitted so far (batch parts counted).
    pub fn calls(&self) -> u32 {
        self.calls.load(Ordering::SeqCst)
    }

    async fn admit(&self, weight: u32) -> Result<(), GoogleError> {
        let weight = weight.max(1);
        let before = self.calls.fetch_add(weight, Ordering::SeqCst);
        // A first call heavier than the cap still goes (a full batch), or nothing could.
        if before > 0 && before + weight > self.cap {
            self.calls.fetch_sub(weight, Ordering::SeqCst);
            return Err(GoogleError::Paced(Pace::Account));
        }
        if let Some(budget) = &self.budget {
            let mut held = self.held.lock().await;
            if held.calls < weight {
                let grant = budget.take(self.reservation(*held, weight)).await;
                held.reserved = true;
                held.calls += grant.granted;
                if held.calls < weight {
                    self.calls.fetch_sub(weight, Ordering::SeqCst);
                    return Err(GoogleError::Paced(Pace::Tenant {
                        retry_in: grant.retry_in,
                    }));
                }
            }
            held.calls -= weight;
        }
        Ok(())
    }

    /// Gives the unused reservation back to the budget.
    pub async fn finish(&self) {
        if let Some(budget) = &self.budget {
            let mut held = self.held.lock().await;
            if held.calls > 0 {
                budget.give_back(held.calls).await;
                held.calls = 0;
            }
        }
    }
}

tokio::task_local! {
    static PACER: Arc<Pacer>;
}

/// Runs `fut` with every Google call inside it paced by `pacer`.
pub async fn paced<F: Future>(pacer: Arc<Pacer>, fut: F) -> F::Output {
    PACER.scope(pacer, fut).await
}

/// Calls the current unit of work may still make before the account's cap (`None` outside
/// [`paced`]): what a pass plans its writes within.
pub fn remaining() -> Option<u32> {
    PACER.try_with(|p| p.cap.saturating_sub(p.calls())).ok()
}

/// Lets a call of `weight` through, or refuses it (no-op outside [`paced`]).
pub(crate) async fn admit(weight: u32) -> Result<(), GoogleError> {
    match PACER.try_with(Arc::clone) {
        Ok(pacer) => pacer.admit(weight).await,
        Err(_) => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    struct Bucket(Mutex<u32>);

    #[async_trait]
    impl Budget for Bucket {
        async fn take(&self, n: u32) -> Grant {
            let mut left = self.0.lock().unwrap();
            let granted = n.min(*left);
            *left -= granted;
            Grant {
                granted,
                retry_in: Duration::from_secs(7),
            }
        }
        async fn give_back(&self, n: u32) {
            *self.0.lock().unwrap() += n;
        }
    }

    #[tokio::test]
    async fn the_account_cap_stops_calls_past_it() {
        let pacer = Arc::new(Pacer::new(3, None, 1));
        let got = paced(pacer.clone(), async {
            let mut out = Vec::new();
            for _ in 0..5 {
                out.push(admit(1).await.is_ok());
            }
            out
        })
        .await;
        assert_eq!(got, [true, true, true, false, false]);
        assert_eq!(pacer.calls(), 3);
        // A batch heavier than the cap goes only as the first call.
        let pacer = Arc::new(Pacer::new(3, None, 1));
        assert!(paced(pacer.clone(), admit(50)).await.is_ok());
        assert!(matches!(
            paced(pacer, admit(1)).await,
            Err(GoogleError::Paced(Pace::Account))
        ));
        // Unpaced work is never refused, and has no plan limit.
        assert!(admit(1000).await.is_ok());
        assert_eq!(remaining(), None);
        let pacer = Arc::new(Pacer::new(10, None, 1));
        let left = paced(pacer, async {
            admit(3).await.unwrap();
            remaining()
        })
        .await;
        assert_eq!(left, Some(7));
    }

    #[tokio::test]
    async fn the_tenant_budget_is_reserved_and_given_back() {
        let bucket = Arc::new(Bucket(Mutex::new(25)));
        let pacer = Arc::new(Pacer::new(100, Some(bucket.clone()), 10));
        paced(pacer.clone(), async {
            for _ in 0..12 {
                admit(1).await.unwrap();
            }
        })
        .await;
        // Two reservations of 10 taken, 8 of them unused.
        assert_eq!(*bucket.0.lock().unwrap(), 5);
        pacer.finish().await;
        assert_eq!(*bucket.0.lock().unwrap(), 13);
        // An empty budget refuses, saying when to come back.
        let empty = Arc::new(Bucket(Mutex::new(0)));
        let pacer = Arc::new(Pacer::new(100, Some(empty), 10));
        assert!(matches!(
            paced(pacer.clone(), admit(1)).await,
            Err(GoogleError::Paced(Pace::Tenant { retry_in })) if retry_in == Duration::from_secs(7)
        ));
        assert_eq!(pacer.calls(), 0);
    }

    /// Counts the budget's writes.
    struct Counted(Bucket, Mutex<u32>);

    #[async_trait]
    impl Budget for Counted {
        async fn take(&self, n: u32) -> Grant {
            *self.1.lock().unwrap() += 1;
            self.0.take(n).await
        }
        async fn give_back(&self, n: u32) {
            *self.1.lock().unwrap() += 1;
            self.0.give_back(n).await
        }
    }

    #[tokio::test]
    async fn an_idle_job_uses_up_its_first_reservation() {
        let run = async |expected: u32, calls: u32| {
            let bucket = Arc::new(Counted(Bucket(Mutex::new(100)), Mutex::new(0)));
            let pacer = Arc::new(Pacer::new(200, Some(bucket.clone()), 20).expecting(expected));
            paced(pacer.clone(), async {
                for _ in 0..calls {
                    admit(1).await.unwrap();
                }
            })
            .await;
            pacer.finish().await;
            let left = *bucket.0 .0.lock().unwrap();
            let writes = *bucket.1.lock().unwrap();
            (100 - left, writes)
        };
        // Idle: the calls it expected, reserved once, nothing to give back.
        assert_eq!(run(1, 1).await, (1, 1));
        assert_eq!(run(2, 2).await, (2, 1));
        // Busy: the first reservation, then the usual ones, and the rest given back.
        assert_eq!(run(2, 5).await, (5, 3));
        // Fewer calls than expected: what was not used is given back.
        assert_eq!(run(2, 1).await, (1, 2));
        // Every call is reserved before it goes: an empty budget refuses the first.
        let empty = Arc::new(Bucket(Mutex::new(0)));
        let pacer = Arc::new(Pacer::new(100, Some(empty), 10).expecting(1));
        assert!(matches!(
            paced(pacer, admit(1)).await,
            Err(GoogleError::Paced(Pace::Tenant { .. }))
        ));
    }
}
