//! The product's Calendar client (`shared::google::{calendar, batch, retry}`) against the
//! Google sandbox over real HTTP: idempotent inserts, etags, deletes, pagination and sync
//! tokens, recurrence exceptions, extended properties, the batch endpoint and the retry
//! policy, `freebusy.query`. Every test runs with tiny retry delays.

use crate::world::google_client::{fast, ClientEnv as Env, ALICE, CLIENT};
use google_sandbox::{FaultKind, FaultSpec};
use secrecy::SecretString;
use serde_json::json;
use shared::google::batch::{BatchRequest, MAX_PARTS};
use shared::google::calendar::{
    Event, EventDateTime, ExtendedProperties, FreeBusyRequest, FreeBusyRequestItem, ListEvents,
    SendUpdates, WatchRequest,
};
use shared::google::GoogleError;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

const CALENDAR_READONLY: &str = "https://www.googleapis.com/auth/calendar.readonly";

/// A base32hex event id (Calendar's alphabet is 0-9a-v).
fn event_id(tag: &str, n: usize) -> String {
    format!("crm{tag}{n:05}")
}

fn at(date_time: &str) -> Option<EventDateTime> {
    Some(EventDateTime {
        date_time: Some(date_time.into()),
        time_zone: Some("Europe/Berlin".into()),
        ..Default::default()
    })
}

fn meeting(id: &str, summary: &str) -> Event {
    Event {
        id: id.into(),
        summary: Some(summary.into()),
        start: at("2030-03-04T10:00:00+01:00"),
        end: at("2030-03-04T11:00:00+01:00"),
        ..Default::default()
    }
}

fn events_path(id: &str) -> String {
    format!("/calendar/v3/calendars/alice%40example.com/events/{id}")
}

#[tokio::test]
async fn idempotent_insert_etags_and_deletes() {
    let env = Env::calendar().await;
    fast(async {
        let (g, t) = (&env.google, &env.token);
        let id = event_id("a", 1);
        let mut event = meeting(&id, "Kick-off");
        event.description = Some("agenda".into());
        event.attendees = Some(vec![shared::google::calendar::Attendee {
            email: Some("bob@example.com".into()),
            optional: Some(true),
            ..Default::default()
        }]);
        let created = g
            .insert_event(t, ALICE, &event, SendUpdates::None)
            .await
            .expect("insert");
        assert_eq!(created.id, id);
        assert_eq!(created.status.as_deref(), Some("confirmed"));
        assert!(created.etag.is_some() && created.html_link.is_some());
        assert!(created.other.contains_key("kind"), "unmodelled fields kept");
        let attendee = &created.attendees.as_ref().expect("attendees")[0];
        assert_eq!(attendee.response_status.as_deref(), Some("needsAction"));
        assert_eq!(attendee.optional, Some(true));

        // A retried insert with the same client-chosen id can only conflict.
        let again = g.insert_event(t, ALICE, &event, SendUpdates::None).await;
        assert!(
            matches!(again, Err(GoogleError::Conflict(ref r)) if r == "duplicate"),
            "{again:?}"
        );

        let got = g
            .get_event(t, ALICE, &id)
            .await
            .expect("get")
            .expect("exists");
        assert_eq!(got, created);
        assert_eq!(
            g.get_event(t, ALICE, "crmnothere").await.expect("get"),
            None
        );

        // Stale etag → 412; the current one → patched.
        let stale = "\"1000000000000000001\"";
        let patch = json!({"summary": "Kick-off (moved)"});
        let refused = g
            .patch_event(t, ALICE, &id, &patch, Some(stale), SendUpdates::None)
            .await;
        assert!(
            matches!(refused, Err(GoogleError::PreconditionFailed(_))),
            "{refused:?}"
        );
        let patched = g
            .patch_event(
                t,
                ALICE,
                &id,
                &patch,
                created.etag.as_deref(),
                SendUpdates::None,
            )
            .await
            .expect("patch with the right etag");
        assert_eq!(patched.summary.as_deref(), Some("Kick-off (moved)"));
        assert_eq!(
            patched.description.as_deref(),
            Some("agenda"),
            "patch keeps other fields"
        );
        assert_ne!(patched.etag, created.etag);

        // Delete with a stale etag is refused; then deleting twice is fine.
        let refused = g
            .delete_event(t, ALICE, &id, created.etag.as_deref(), SendUpdates::None)
            .await;
        assert!(
            matches!(refused, Err(GoogleError::PreconditionFailed(_))),
            "{refused:?}"
        );
        g.delete_event(t, ALICE, &id, patched.etag.as_deref(), SendUpdates::None)
            .await
            .expect("delete");
        g.delete_event(t, ALICE, &id, None, SendUpdates::None)
            .await
            .expect("second delete (410) counts as deleted");
        g.delete_event(t, ALICE, "crmnothere", None, SendUpdates::All)
            .await
            .expect("unknown (404) counts as deleted");
        let after = g.get_event(t, ALICE, &id).await.expect("get");
        assert!(after.is_some_and(|e| e.is_cancelled()));

        let deletes: Vec<_> = env
            .log()
            .into_iter()
            .filter(|r| r.method == "DELETE")
            .map(|r| (r.status, r.query.unwrap_or_default()))
            .collect();
        assert_eq!(deletes.len(), 4, "no retries of 404/410/412: {deletes:?}");
        assert_eq!(deletes[1].0, 204);
        assert_eq!(deletes[2].0, 410);
        assert!(deletes.iter().take(3).all(|(_, q)| q == "sendUpdates=none"));
        assert_eq!(deletes[3].1, "sendUpdates=all");
    })
    .await;
}

#[tokio::test]
async fn pages_sync_tokens_and_full_sync_required() {
    let env = Env::calendar().await;
    fast(async {
        let (g, t) = (&env.google, &env.token);
        for n in 0..7 {
            g.insert_event(
                t,
                "primary",
                &meeting(&event_id("b", n), "x"),
                SendUpdates::None,
            )
            .await
            .expect("insert");
        }
        let full = ListEvents {
            max_results: Some(3),
            time_min: Some("2030-01-01T00:00:00Z".into()),
            ..Default::default()
        };
        let (mut seen, mut pages) = (Vec::new(), 0);
        let mut params = full.clone();
        let sync_token = loop {
            pages += 1;
            assert!(pages <= 10, "pagination must end");
            let page = g.list_events(t, ALICE, &params).await.expect("list");
            seen.extend(page.items.into_iter().map(|e| e.id));
            match page.next_page_token {
                Some(next) => {
                    assert!(
                        page.next_sync_token.is_none(),
                        "sync token only on the last page"
                    );
                    params.page_token = Some(next);
                }
                None => break page.next_sync_token.expect("sync token on the last page"),
            }
        };
        assert_eq!(pages, 3);
        let mut expected: Vec<String> = (0..7).map(|n| event_id("b", n)).collect();
        seen.sort();
        expected.sort();
        assert_eq!(seen, expected);

        // Changes since: one patched, one deleted, one new.
        g.patch_event(
            t,
            ALICE,
            &event_id("b", 2),
            &json!({"location": "Room 1"}),
            None,
            SendUpdates::None,
        )
        .await
        .expect("patch");
        g.delete_event(t, ALICE, &event_id("b", 4), None, SendUpdates::None)
            .await
            .expect("delete");
        g.insert_event(
            t,
            ALICE,
            &meeting(&event_id("b", 9), "new"),
            SendUpdates::None,
        )
        .await
        .expect("insert");
        let incremental = ListEvents {
            sync_token: Some(sync_token.clone()),
            ..full.clone()
        };
        let page = g
            .list_events(t, ALICE, &incremental)
            .await
            .expect("incremental list");
        let mut changes: Vec<(String, Option<String>)> = page
            .items
            .iter()
            .map(|e| (e.id.clone(), e.status.clone()))
            .collect();
        changes.sort();
        assert_eq!(
            changes,
            vec![
                (event_id("b", 2), Some("confirmed".into())),
                (event_id("b", 4), Some("cancelled".into())),
                (event_id("b", 9), Some("confirmed".into())),
            ]
        );
        let next = page.next_sync_token.expect("a new sync token");
        let query = env
            .log()
            .into_iter()
            .rev()
            .find(|r| r.method == "GET")
            .and_then(|r| r.query)
            .unwrap_or_default();
        assert!(query.contains("syncToken="), "{query}");
        assert!(
            !query.contains("timeMin") && !query.contains("showDeleted"),
            "{query}"
        );

        // Nothing changed → nothing listed.
        let quiet = ListEvents {
            sync_token: Some(next.clone()),
            ..Default::default()
        };
        let page = g.list_events(t, ALICE, &quiet).await.expect("list");
        assert!(page.items.is_empty());

        // Invalidated sync tokens → 410 fullSyncRequired, not retried.
        env.running.sandbox.invalidate_sync_tokens(ALICE);
        let before = env.count("GET", "/calendar/v3/calendars/alice%40example.com/events");
        let gone = g.list_events(t, ALICE, &quiet).await;
        match gone {
            Err(e @ GoogleError::Gone(_)) => assert!(e.is_full_sync_required()),
            other => panic!("expected Gone, got {other:?}"),
        }
        let after = env.count("GET", "/calendar/v3/calendars/alice%40example.com/events");
        assert_eq!(after - before, 1);
    })
    .await;
}

#[tokio::test]
async fn recurring_event_with_an_exception() {
    let env = Env::calendar().await;
    fast(async {
        let (g, t) = (&env.google, &env.token);
        // Inside the sandbox's expansion horizon (two years from its clock).
        let now = env.running.sandbox.now_rfc3339();
        let year: i32 = now[..4].parse::<i32>().expect("a year") + 1;
        let id = event_id("r", 1);
        let mut series = meeting(&id, "Weekly");
        series.start = at(&format!("{year}-03-04T10:00:00+01:00"));
        series.end = at(&format!("{year}-03-04T11:00:00+01:00"));
        series.recurrence = Some(vec!["RRULE:FREQ=WEEKLY;COUNT=4".into()]);
        let master = g
            .insert_event(t, ALICE, &series, SendUpdates::None)
            .await
            .expect("insert series");
        assert_eq!(master.recurrence, series.recurrence);
        let sync = g
            .list_events(t, ALICE, &ListEvents::default())
            .await
            .expect("list")
            .next_sync_token
            .expect("sync token");

        let instances = g.instances(t, ALICE, &id, None).await.expect("instances");
        assert_eq!(instances.items.len(), 4);
        let second = &instances.items[1];
        assert_eq!(second.recurring_event_id.as_deref(), Some(id.as_str()));
        let original = second.original_start_time.clone().expect("originalStartTime");

        let moved = g
            .patch_event(
                t,
                ALICE,
                &second.id,
                &json!({"summary": "Weekly (special)", "start": {"dateTime": format!("{year}-03-11T12:00:00+01:00"), "timeZone": "Europe/Berlin"}, "end": {"dateTime": format!("{year}-03-11T13:00:00+01:00"), "timeZone": "Europe/Berlin"}}),
                second.etag.as_deref(),
                SendUpdates::None,
            )
            .await
            .expect("patch one instance");
        assert_eq!(moved.recurring_event_id.as_deref(), Some(id.as_str()));
        assert_eq!(moved.original_start_time.as_ref(), Some(&original));

        let changes = g
            .list_events(
                t,
                ALICE,
                &ListEvents {
                    sync_token: Some(sync),
                    ..Default::default()
                },
            )
            .await
            .expect("incremental list");
        let exception = changes
            .items
            .iter()
            .find(|e| e.id == second.id)
            .expect("the exception is a change");
        assert_eq!(exception.recurring_event_id.as_deref(), Some(id.as_str()));
        assert_eq!(exception.original_start_time.as_ref(), Some(&original));
        assert_eq!(exception.summary.as_deref(), Some("Weekly (special)"));

        let again = g.instances(t, ALICE, &id, None).await.expect("instances");
        assert_eq!(again.items[1].summary.as_deref(), Some("Weekly (special)"));
        assert_eq!(again.items[0].summary.as_deref(), Some("Weekly"));
    })
    .await;
}

#[tokio::test]
async fn private_extended_properties_round_trip_and_filter() {
    let env = Env::calendar().await;
    fast(async {
        let (g, t) = (&env.google, &env.token);
        for (n, crm) in ["deal-1", "deal 2&x=y", "deal-1"].iter().enumerate() {
            let mut e = meeting(&event_id("p", n), "tagged");
            e.extended_properties = Some(ExtendedProperties {
                private: BTreeMap::from([("crmId".to_string(), crm.to_string())]),
                shared: BTreeMap::new(),
            });
            let created = g
                .insert_event(t, ALICE, &e, SendUpdates::None)
                .await
                .expect("insert");
            assert_eq!(created.extended_properties, e.extended_properties);
        }
        g.insert_event(
            t,
            ALICE,
            &meeting(&event_id("p", 9), "untagged"),
            SendUpdates::None,
        )
        .await
        .expect("insert");
        let filter = |value: &str| ListEvents {
            private_extended_property: vec![("crmId".into(), value.into())],
            ..Default::default()
        };
        let page = g
            .list_events(t, ALICE, &filter("deal-1"))
            .await
            .expect("list");
        let mut ids: Vec<String> = page.items.into_iter().map(|e| e.id).collect();
        ids.sort();
        assert_eq!(ids, vec![event_id("p", 0), event_id("p", 2)]);
        let page = g
            .list_events(t, ALICE, &filter("deal 2&x=y"))
            .await
            .expect("list");
        assert_eq!(page.items.len(), 1);
        assert_eq!(page.items[0].id, event_id("p", 1));
        assert_eq!(
            page.items[0]
                .extended_properties
                .as_ref()
                .map(|p| p.private["crmId"].as_str()),
            Some("deal 2&x=y")
        );
    })
    .await;
}

#[tokio::test]
async fn batch_of_120_inserts_costs_three_requests() {
    let env = Env::calendar().await;
    fast(async {
        let (g, t) = (&env.google, &env.token);
        let events: Vec<Event> = (0..120)
            .map(|n| meeting(&event_id("c", n), &format!("#{n}")))
            .collect();
        let requests: Vec<BatchRequest> = events
            .iter()
            .map(|e| BatchRequest::insert_event(ALICE, e, SendUpdates::None).expect("request"))
            .collect();
        let answers = g.batch(t, requests).await.expect("batch");
        assert_eq!(answers.len(), 120);
        for (n, a) in answers.into_iter().enumerate() {
            assert_eq!(a.status, 200, "part {n}: {:?}", a.body);
            assert!(a.header("etag").is_some());
            let e: Event = a.into_result().expect("an event");
            assert_eq!(e.id, event_id("c", n), "answers in request order");
        }
        assert_eq!(
            env.count("POST", "/batch/calendar/v3"),
            120_usize.div_ceil(MAX_PARTS)
        );
        assert_eq!(
            env.count("POST", "/calendar/v3/calendars/alice%40example.com/events"),
            120
        );

        // Mixed batch: duplicates answer 409 per part, the rest goes through.
        env.running.sandbox.clear_request_log();
        let get_id = event_id("c", 3);
        let requests = vec![
            BatchRequest::insert_event(ALICE, &events[0], SendUpdates::None).expect("request"),
            BatchRequest::insert_event(
                ALICE,
                &meeting(&event_id("c", 500), "new"),
                SendUpdates::None,
            )
            .expect("request"),
            BatchRequest::patch_event(
                ALICE,
                &get_id,
                &json!({"summary": "p"}),
                Some("\"stale\""),
                SendUpdates::None,
            ),
            BatchRequest::delete_event(ALICE, &event_id("c", 5), None, SendUpdates::None),
            BatchRequest::get_event(ALICE, &get_id),
            BatchRequest::insert_event(ALICE, &events[1], SendUpdates::None).expect("request"),
        ];
        let answers = g.batch(t, requests).await.expect("batch");
        let statuses: Vec<u16> = answers.iter().map(|a| a.status).collect();
        assert_eq!(statuses, vec![409, 200, 412, 204, 200, 409]);
        assert!(matches!(answers[0].error(), Some(GoogleError::Conflict(_))));
        assert!(matches!(
            answers[2].error(),
            Some(GoogleError::PreconditionFailed(_))
        ));
        assert!(answers[3].error().is_none());
        assert_eq!(answers[4].body["id"], json!(get_id));
        assert_eq!(env.count("POST", "/batch/calendar/v3"), 1);

        // No requests, no HTTP.
        env.running.sandbox.clear_request_log();
        assert!(g
            .batch(t, Vec::new())
            .await
            .expect("empty batch")
            .is_empty());
        assert!(env.log().is_empty());
    })
    .await;
}

#[tokio::test]
async fn batch_request_failures_are_retried_as_a_whole() {
    let env = Env::calendar().await;
    fast(async {
        let (g, t) = (&env.google, &env.token);
        env.running.sandbox.inject_fault(
            FaultSpec::new(FaultKind::Unavailable)
                .path_prefix("/batch/")
                .count(1),
        );
        let requests = vec![BatchRequest::insert_event(
            ALICE,
            &meeting(&event_id("d", 1), "x"),
            SendUpdates::None,
        )
        .expect("request")];
        let answers = g.batch(t, requests).await.expect("batch after a retry");
        assert_eq!(answers[0].status, 200);
        let statuses: Vec<u16> = env
            .log()
            .iter()
            .filter(|r| r.path == "/batch/calendar/v3")
            .map(|r| r.status)
            .collect();
        assert_eq!(statuses, vec![503, 200]);

        // A rate-limited part is returned to the caller, not retried.
        env.running.sandbox.clear_request_log();
        env.running.sandbox.inject_fault(
            FaultSpec::new(FaultKind::RateLimitExceeded)
                .user(ALICE)
                .count(1),
        );
        let answers = g
            .batch(t, vec![BatchRequest::get_event(ALICE, &event_id("d", 1))])
            .await
            .expect("batch");
        assert_eq!(answers[0].status, 403);
        assert!(answers[0].error().is_some_and(|e| e.is_transient()));
        assert_eq!(env.count("POST", "/batch/calendar/v3"), 1);
    })
    .await;
}

#[tokio::test]
async fn transient_errors_are_retried_with_backoff() {
    let env = Env::calendar().await;
    fast(async {
        let (g, t) = (&env.google, &env.token);
        let path = "/calendar/v3/calendars/alice%40example.com/events";

        // 2 × 503, then success: 3 attempts.
        env.running
            .sandbox
            .inject_fault(FaultSpec::new(FaultKind::Unavailable).user(ALICE).count(2));
        let started = Instant::now();
        g.list_events(t, ALICE, &ListEvents::default())
            .await
            .expect("list after retries");
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "test delays are tiny"
        );
        let statuses: Vec<u16> = env
            .log()
            .iter()
            .filter(|r| r.path == path)
            .map(|r| r.status)
            .collect();
        assert_eq!(statuses, vec![503, 503, 200]);

        // 403 rateLimitExceeded and userRateLimitExceeded are retried too.
        env.running.sandbox.clear_request_log();
        env.running.sandbox.inject_fault(
            FaultSpec::new(FaultKind::RateLimitExceeded)
                .user(ALICE)
                .count(1),
        );
        env.running.sandbox.inject_fault(
            FaultSpec::new(FaultKind::UserRateLimitExceeded)
                .user(ALICE)
                .count(1),
        );
        g.insert_event(
            t,
            ALICE,
            &meeting(&event_id("e", 1), "x"),
            SendUpdates::None,
        )
        .await
        .expect("insert after rate limits");
        let statuses: Vec<u16> = env
            .log()
            .iter()
            .filter(|r| r.path == path)
            .map(|r| r.status)
            .collect();
        assert_eq!(statuses, vec![403, 403, 200]);

        // 429 with Retry-After: 1 → waits at least a second, then succeeds.
        env.running.sandbox.clear_request_log();
        env.running.sandbox.inject_fault(
            FaultSpec::new(FaultKind::TooManyRequests)
                .user(ALICE)
                .retry_after_secs(1)
                .count(1),
        );
        let started = Instant::now();
        let got = g
            .get_event(t, ALICE, &event_id("e", 1))
            .await
            .expect("get after 429");
        assert!(got.is_some());
        assert!(
            started.elapsed() >= Duration::from_secs(1),
            "Retry-After honoured"
        );
        assert_eq!(env.count("GET", &events_path(&event_id("e", 1))), 2);

        // The policy gives up after max_attempts.
        env.running.sandbox.clear_request_log();
        env.running.sandbox.inject_fault(
            FaultSpec::new(FaultKind::InternalError)
                .user(ALICE)
                .count(10),
        );
        let failed = g.list_events(t, ALICE, &ListEvents::default()).await;
        assert!(
            matches!(failed, Err(GoogleError::Transient(_))),
            "{failed:?}"
        );
        assert_eq!(env.count("GET", path), 5);
        env.running.sandbox.clear_faults();
    })
    .await;
}

#[tokio::test]
async fn permanent_errors_are_not_retried() {
    let env = Env::calendar().await;
    fast(async {
        let readonly = SecretString::from(
            env.running
                .sandbox
                .issue_access_token(CLIENT, ALICE, &[CALENDAR_READONLY]),
        );
        let refused = env
            .google
            .insert_event(&readonly, ALICE, &meeting(&event_id("f", 1), "x"), SendUpdates::None)
            .await;
        assert!(
            matches!(refused, Err(GoogleError::Rejected { status: 403, ref reason }) if reason == "insufficientPermissions"),
            "{refused:?}"
        );
        assert_eq!(env.count("POST", "/calendar/v3/calendars/alice%40example.com/events"), 1);

        // Someone else's calendar is not found, not retried.
        let other = env.google.list_events(&env.token, "bob@example.com", &ListEvents::default()).await;
        assert!(matches!(other, Err(GoogleError::NotFound(_))), "{other:?}");
        assert_eq!(env.count("GET", "/calendar/v3/calendars/bob%40example.com/events"), 1);
    })
    .await;
}

#[tokio::test]
async fn watch_opens_a_channel() {
    let env = Env::calendar().await;
    fast(async {
        let (g, t) = (&env.google, &env.token);
        let watch = WatchRequest {
            id: "channel-1".into(),
            token: SecretString::from("per-channel-secret".to_string()),
            address: "http://127.0.0.1:9/webhooks/google/calendar".into(),
            ttl_secs: Some(3600),
        };
        let channel = g.watch_events(t, "primary", &watch).await.expect("watch");
        assert_eq!(channel.id, "channel-1");
        assert!(!channel.resource_id.is_empty());
        let expires = channel.expiration_ms.expect("expiration");
        let now_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as i64)
            .unwrap_or_default();
        assert!(
            (expires - now_ms - 3_600_000).abs() < 120_000,
            "ttl honoured"
        );
        g.stop_channel(t, &channel.id, &channel.resource_id)
            .await
            .expect("stop");
    })
    .await;
}

fn free_busy_request(min: &str, max: &str, ids: &[&str]) -> FreeBusyRequest {
    FreeBusyRequest {
        time_min: min.into(),
        time_max: max.into(),
        time_zone: Some("Europe/Berlin".into()),
        calendar_expansion_max: None,
        items: ids
            .iter()
            .map(|id| FreeBusyRequestItem { id: (*id).into() })
            .collect(),
    }
}

#[tokio::test]
async fn free_busy_answers_busy_periods_per_calendar_through_the_retry_path() {
    let env = Env::calendar().await;
    fast(async {
        let (g, t) = (&env.google, &env.token);
        g.insert_event(t, ALICE, &meeting(&event_id("fb", 1), "Busy"), SendUpdates::None)
            .await
            .expect("insert");
        env.running.sandbox.inject_fault(
            FaultSpec::new(FaultKind::Unavailable)
                .path_prefix("/calendar/v3/freeBusy")
                .count(1),
        );
        let request = free_busy_request(
            "2030-03-04T00:00:00+01:00",
            "2030-03-05T00:00:00+01:00",
            &["primary", "bob@example.com"],
        );
        let got = g.free_busy(t, &request).await.expect("freeBusy after a retry");
        assert_eq!(env.count("POST", "/calendar/v3/freeBusy"), 2);
        let primary = &got.calendars["primary"];
        assert!(primary.errors.is_empty());
        assert_eq!(primary.busy.len(), 1);
        assert_eq!(primary.busy[0].start, "2030-03-04T09:00:00Z");
        assert_eq!(primary.busy[0].end, "2030-03-04T10:00:00Z");
        assert_eq!(got.calendars["bob@example.com"].errors[0].reason, "notFound");

        // Google's bounds are a 400 of the whole query, not retried.
        let too_long = free_busy_request("2030-01-01T00:00:00Z", "2030-04-02T00:00:00Z", &["primary"]);
        let refused = g.free_busy(t, &too_long).await;
        assert!(
            matches!(refused, Err(GoogleError::Rejected { status: 400, ref reason }) if reason == "timeRangeTooLong"),
            "{refused:?}"
        );
        let freebusy_only = SecretString::from(env.running.sandbox.issue_access_token(
            CLIENT,
            ALICE,
            &["https://www.googleapis.com/auth/calendar.freebusy"],
        ));
        assert!(g.free_busy(&freebusy_only, &request).await.is_ok());
        let events_only = SecretString::from(env.running.sandbox.issue_access_token(
            CLIENT,
            ALICE,
            &["https://www.googleapis.com/auth/calendar.events.owned"],
        ));
        let refused = g.free_busy(&events_only, &request).await;
        assert!(
            matches!(refused, Err(GoogleError::Rejected { status: 403, ref reason }) if reason == "insufficientPermissions"),
            "{refused:?}"
        );
    })
    .await;
}
