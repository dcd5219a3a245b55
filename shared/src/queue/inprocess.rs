//! The in-process queue: what the local server runs its worker from. Deduplicates like a
//! FIFO queue (same id within five minutes is dropped).

use super::{Message, Queue, QueueError, SyncJob};
use async_trait::async_trait;
use std::collections::{HashSet, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

const DEDUP_WINDOW: Duration = Duration::from_secs(300);

pub struct InProcessQueue {
    tx: mpsc::UnboundedSender<SyncJob>,
    seen: Mutex<Seen>,
}

/// The deduplication ids sent within the window, and the same in the order they were sent
/// (so expiring them costs only the expired ones, not every id at every send).
#[derive(Default)]
struct Seen {
    ids: HashSet<String>,
    by_time: VecDeque<(Instant, String)>,
}

impl InProcessQueue {
    /// The queue and the receiving end the worker loop reads.
    pub fn new() -> (Self, mpsc::UnboundedReceiver<SyncJob>) {
        let (tx, rx) = mpsc::unbounded_channel();
        (
            Self {
                tx,
                seen: Mutex::new(Seen::default()),
            },
            rx,
        )
    }
}

#[async_trait]
impl Queue for InProcessQueue {
    async fn send(&self, messages: Vec<Message>) -> Result<(), QueueError> {
        let total = messages.len();
        let mut failed = 0;
        let now = Instant::now();
        let mut seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        while let Some((at, _)) = seen.by_time.front() {
            if now.duration_since(*at) < DEDUP_WINDOW {
                break;
            }
            if let Some((_, id)) = seen.by_time.pop_front() {
                seen.ids.remove(&id);
            }
        }
        for m in messages {
            if seen.ids.contains(&m.dedup_id) {
                continue;
            }
            seen.ids.insert(m.dedup_id.clone());
            seen.by_time.push_back((now, m.dedup_id));
            if self.tx.send(m.job).is_err() {
                failed += 1;
            }
        }
        if failed > 0 {
            return Err(QueueError::Partial { failed, total });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{TenantId, UserId};
    use crate::queue::SyncReason;

    #[tokio::test]
    async fn deduplicates_within_the_window() {
        let (q, mut rx) = InProcessQueue::new();
        let job = SyncJob {
            tenant: TenantId::parse("acme").unwrap(),
            user: UserId::parse("u1").unwrap(),
            calendar: None,
            reason: SyncReason::Manual,
            confirm_mass_deletion: false,
            record: None,
        };
        let m = |id: &str| Message {
            job: job.clone(),
            dedup_id: id.into(),
        };
        q.send(vec![m("a"), m("a"), m("b")]).await.unwrap();
        q.send(vec![m("b")]).await.unwrap();
        assert_eq!(rx.recv().await, Some(job.clone()));
        assert_eq!(rx.recv().await, Some(job.clone()));
        assert!(rx.try_recv().is_err());
        // As on SQS FIFO, an id is remembered after its job was taken (and run): the push
        // webhook's ids depend on it (`calendar::channels`).
        q.send(vec![m("a"), m("c")]).await.unwrap();
        assert_eq!(rx.recv().await.map(|j| j.reason), Some(SyncReason::Manual));
        assert!(rx.try_recv().is_err(), "\"a\" was delivered twice");
    }
}
