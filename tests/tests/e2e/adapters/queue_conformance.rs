//! One conformance suite for the work-queue port, written once and run on both adapters: the
//! in-process queue (the local server's, and the embedded test world's) and SQS FIFO on moto
//! over the real wire. What the worker relies on — every job arrives whole and once, a
//! deduplication id sent again (in the same batch, in another send, and on SQS and the
//! in-process queue after its job was taken) is dropped, one account's jobs keep their order,
//! sends of more than a batch all arrive — holds on each, so the embedded world delivers what
//! SQS would.

use shared::domain::{CrmId, TenantId, UserId};
use shared::queue::inprocess::InProcessQueue;
use shared::queue::sqs::SqsQueue;
use shared::queue::{dedup_id, Message, Queue, SyncJob, SyncReason};
use std::collections::HashMap;
use std::sync::Arc;
use tokio::sync::{mpsc, Mutex};

/// Where a queue's jobs are taken from, as its consumer takes them.
enum Consumer {
    /// The worker loop's receiving end.
    InProcess(Mutex<mpsc::UnboundedReceiver<SyncJob>>),
    /// Lambda's event source: receive, then delete what was received.
    Sqs {
        client: aws_sdk_sqs::Client,
        url: String,
    },
}

impl Consumer {
    /// Every job waiting now, in the order the consumer gets them (each taken for good).
    async fn take_all(&self) -> Vec<SyncJob> {
        match self {
            Consumer::InProcess(rx) => {
                let mut rx = rx.lock().await;
                std::iter::from_fn(|| rx.try_recv().ok()).collect()
            }
            Consumer::Sqs { client, url } => crate::world::sqs_take_all(client, url)
                .await
                .iter()
                .map(|m| serde_json::from_str(m.body().expect("body")).expect("a SyncJob"))
                .collect(),
        }
    }
}

struct Backend {
    queue: Arc<dyn Queue>,
    consumer: Consumer,
}

async fn in_process() -> Backend {
    let (queue, rx) = InProcessQueue::new();
    Backend {
        queue: Arc::new(queue),
        consumer: Consumer::InProcess(Mutex::new(rx)),
    }
}

async fn sqs_fifo() -> Backend {
    let client = aws_sdk_sqs::Client::new(&crate::world::sdk(&crate::world::moto()).await);
    let url = crate::world::fresh_fifo_queue(&client).await;
    Backend {
        queue: Arc::new(SqsQueue::new(client.clone(), url.clone())),
        consumer: Consumer::Sqs { client, url },
    }
}

fn job(user: &str, reason: SyncReason) -> SyncJob {
    SyncJob {
        tenant: TenantId::parse("acme").unwrap(),
        user: UserId::parse(user).unwrap(),
        calendar: None,
        reason,
        confirm_mass_deletion: false,
        record: None,
    }
}

fn message(job: SyncJob, slot: &str) -> Message {
    Message {
        dedup_id: dedup_id(&[&job.group_id(), slot]),
        job,
    }
}

// ---- the suite ------------------------------------------------------------------------------

/// Each field of a job survives the trip, whichever kind of job it is.
async fn jobs_arrive_whole(b: Backend) {
    let jobs = vec![
        job("u1", SyncReason::Scheduled),
        SyncJob {
            calendar: Some("team@group.calendar.google.com".into()),
            ..job("u2", SyncReason::Push)
        },
        SyncJob {
            confirm_mass_deletion: true,
            ..job("u3", SyncReason::Manual)
        },
        SyncJob {
            record: Some(CrmId::parse("MTG-2024_0001").unwrap()),
            ..job("u4", SyncReason::RecordChange)
        },
        job("u5", SyncReason::Continuation),
        job("u6", SyncReason::Deliver),
    ];
    b.queue
        .send(
            jobs.iter()
                .enumerate()
                .map(|(i, j)| message(j.clone(), &i.to_string()))
                .collect(),
        )
        .await
        .unwrap();
    let mut got = b.consumer.take_all().await;
    got.sort_by(|a, b| a.user.as_str().cmp(b.user.as_str()));
    assert_eq!(got, jobs);
}

/// The same id twice in one send, and again in a later send while the first is waiting:
/// one job.
async fn a_deduplication_id_is_sent_once(b: Backend) {
    let m = message(job("u1", SyncReason::Push), "slot-1");
    let other = message(job("u1", SyncReason::Push), "slot-2");
    b.queue
        .send(vec![m.clone(), m.clone(), other.clone()])
        .await
        .unwrap();
    b.queue.send(vec![m.clone()]).await.unwrap();
    assert_eq!(b.consumer.take_all().await, vec![m.job, other.job]);
}

/// An id sent again after its job was taken (and run) is still dropped within the window
/// (the push webhook's ids depend on it: a notification Google repeats is one job), and a
/// new id is not.
async fn a_deduplication_id_is_remembered_after_its_job_was_taken(b: Backend) {
    let m = message(job("u1", SyncReason::Push), "slot-1");
    b.queue.send(vec![m.clone()]).await.unwrap();
    assert_eq!(b.consumer.take_all().await, vec![m.job.clone()]);
    b.queue.send(vec![m.clone()]).await.unwrap();
    assert_eq!(
        b.consumer.take_all().await,
        vec![],
        "an id is remembered after its job was taken"
    );
    let fresh = message(job("u1", SyncReason::Push), "slot-3");
    b.queue.send(vec![fresh.clone()]).await.unwrap();
    assert_eq!(b.consumer.take_all().await, vec![fresh.job]);
}

/// 23 jobs for five accounts in one send (three SQS batches): all arrive, and each
/// account's in the order they were sent.
async fn an_accounts_jobs_keep_their_order(b: Backend) {
    let reasons = [
        SyncReason::RecordChange,
        SyncReason::Scheduled,
        SyncReason::Continuation,
        SyncReason::Manual,
    ];
    let messages: Vec<Message> = (0..23)
        .map(|i| {
            let j = SyncJob {
                calendar: Some(format!("cal-{i}")),
                ..job(&format!("user{}", i % 5), reasons[i % reasons.len()])
            };
            message(j, &i.to_string())
        })
        .collect();
    b.queue.send(messages.clone()).await.unwrap();
    let got = b.consumer.take_all().await;
    assert_eq!(got.len(), 23);
    let per_account = |jobs: Vec<&SyncJob>| {
        let mut out: HashMap<String, Vec<Option<String>>> = HashMap::new();
        for j in jobs {
            out.entry(j.group_id())
                .or_default()
                .push(j.calendar.clone());
        }
        out
    };
    assert_eq!(
        per_account(got.iter().collect()),
        per_account(messages.iter().map(|m| &m.job).collect())
    );
}

/// Sending nothing is no error and delivers nothing; a send after it works.
async fn an_empty_send_is_a_no_op(b: Backend) {
    b.queue.send(vec![]).await.unwrap();
    assert_eq!(b.consumer.take_all().await, vec![]);
    let m = message(job("u1", SyncReason::Manual), "after-empty");
    b.queue.send(vec![m.clone()]).await.unwrap();
    assert_eq!(b.consumer.take_all().await, vec![m.job]);
}

macro_rules! conformance {
    ($($case:ident),* $(,)?) => {
        mod in_process { $(#[tokio::test] async fn $case() { super::$case(super::in_process().await).await } )* }
        mod sqs_fifo { $(#[tokio::test] async fn $case() { super::$case(super::sqs_fifo().await).await } )* }
    };
}

conformance!(
    jobs_arrive_whole,
    a_deduplication_id_is_sent_once,
    an_accounts_jobs_keep_their_order,
    an_empty_send_is_a_no_op,
);

/// What SQS FIFO does and moto does not: moto checks a new message's deduplication id only
/// against the messages still in the queue, so once a job was received and deleted its id is
/// forgotten (`moto/sqs/models.py`, `Queue.add_message`); SQS remembers every id it accepted
/// for the five-minute interval, whatever became of the message ("Using the message
/// deduplication ID", SQS Developer Guide). Held on the in-process queue, which stands in for
/// SQS in the embedded world.
macro_rules! beyond_moto {
    ($($case:ident),* $(,)?) => {
        mod sqs_semantics_in_process { $(#[tokio::test] async fn $case() { super::$case(super::in_process().await).await } )* }
    };
}

beyond_moto!(a_deduplication_id_is_remembered_after_its_job_was_taken);
