//! Event times (`EventDateTime`) and RRULE / EXDATE / RDATE expansion in the event's IANA
//! time zone.

use jiff::civil::{Date, DateTime, Time, Weekday};
use jiff::tz::TimeZone;
use jiff::{SignedDuration, Span, Timestamp, Zoned};
use serde_json::{json, Value};

/// A start or end: an all-day date or an instant in a time zone.
#[derive(Debug, Clone, PartialEq)]
pub enum When {
    Date(Date),
    At(Zoned),
}

impl When {
    /// The instant this starts at (all-day dates at midnight in `tz`).
    pub fn instant(&self, tz: &TimeZone) -> Timestamp {
        match self {
            When::At(z) => z.timestamp(),
            When::Date(d) => d
                .to_zoned(tz.clone())
                .map(|z| z.timestamp())
                .unwrap_or(Timestamp::UNIX_EPOCH),
        }
    }

    pub fn is_date(&self) -> bool {
        matches!(self, When::Date(_))
    }

    /// The `EventDateTime` JSON Google serves for this value.
    pub fn to_json(&self) -> Value {
        match self {
            When::Date(d) => json!({ "date": d.strftime("%Y-%m-%d").to_string() }),
            When::At(z) => {
                let mut v = json!({ "dateTime": format_date_time(z) });
                if let Some(name) = z.time_zone().iana_name() {
                    v["timeZone"] = json!(name);
                }
                v
            }
        }
    }

    /// The instance-id suffix: `YYYYMMDDTHHMMSSZ` (UTC) or `YYYYMMDD`.
    pub fn id_suffix(&self) -> String {
        match self {
            When::Date(d) => d.strftime("%Y%m%d").to_string(),
            When::At(z) => z.timestamp().strftime("%Y%m%dT%H%M%SZ").to_string(),
        }
    }
}

/// RFC 3339 in the value's own offset, `Z` for UTC (as Google writes `dateTime`).
pub fn format_date_time(z: &Zoned) -> String {
    if z.offset().seconds() == 0 {
        z.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
    } else {
        z.strftime("%Y-%m-%dT%H:%M:%S%:z").to_string()
    }
}

pub fn time_zone(name: &str) -> Result<TimeZone, String> {
    TimeZone::get(name).map_err(|_| format!("Invalid time zone definition: {name}"))
}

/// Parses an `EventDateTime`. `default_tz` is the calendar's zone.
pub fn parse_event_time(v: &Value, default_tz: &str) -> Result<When, String> {
    let obj = v.as_object().ok_or("Invalid start or end time.")?;
    let tz_name = obj.get("timeZone").and_then(Value::as_str);
    if let Some(date) = obj.get("date").and_then(Value::as_str) {
        let d: Date = date
            .parse()
            .map_err(|_| format!("Invalid date value: {date}"))?;
        return Ok(When::Date(d));
    }
    let dt = obj
        .get("dateTime")
        .and_then(Value::as_str)
        .ok_or("Missing start or end time.")?;
    let tz = match tz_name {
        Some(name) => time_zone(name)?,
        None => time_zone(default_tz)?,
    };
    if let Ok(ts) = dt.parse::<Timestamp>() {
        return Ok(When::At(ts.to_zoned(tz)));
    }
    if tz_name.is_none() {
        return Err("Missing time zone definition for start time.".to_string());
    }
    let civil: DateTime = dt
        .parse()
        .map_err(|_| format!("Invalid dateTime value: {dt}"))?;
    civil
        .to_zoned(tz)
        .map(When::At)
        .map_err(|_| format!("Invalid dateTime value: {dt}"))
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Freq {
    Daily,
    Weekly,
    Monthly,
    Yearly,
}

#[derive(Debug, Clone)]
enum Until {
    Date(Date),
    At(Timestamp),
}

#[derive(Debug, Clone)]
struct Rule {
    freq: Freq,
    interval: i64,
    count: Option<usize>,
    until: Option<Until>,
    by_day: Vec<(Option<i8>, Weekday)>,
    by_month_day: Vec<i8>,
    by_month: Vec<i8>,
}

/// A parsed `recurrence` array.
#[derive(Debug, Clone, Default)]
pub struct Recurrence {
    rules: Vec<Rule>,
    exdates: Vec<When>,
    rdates: Vec<When>,
}

fn weekday(code: &str) -> Option<Weekday> {
    Some(match code {
        "MO" => Weekday::Monday,
        "TU" => Weekday::Tuesday,
        "WE" => Weekday::Wednesday,
        "TH" => Weekday::Thursday,
        "FR" => Weekday::Friday,
        "SA" => Weekday::Saturday,
        "SU" => Weekday::Sunday,
        _ => return None,
    })
}

fn parse_basic_date(s: &str) -> Option<Date> {
    if s.len() != 8 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let y: i16 = s.get(0..4)?.parse().ok()?;
    let m: i8 = s.get(4..6)?.parse().ok()?;
    let d: i8 = s.get(6..8)?.parse().ok()?;
    Date::new(y, m, d).ok()
}

/// `YYYYMMDDTHHMMSS[Z]` → civil datetime and whether it is UTC.
fn parse_basic_datetime(s: &str) -> Option<(DateTime, bool)> {
    let (body, utc) = match s.strip_suffix('Z') {
        Some(b) => (b, true),
        None => (s, false),
    };
    let (d, t) = body.split_once('T')?;
    let date = parse_basic_date(d)?;
    if t.len() != 6 || !t.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let h: i8 = t.get(0..2)?.parse().ok()?;
    let mi: i8 = t.get(2..4)?.parse().ok()?;
    let se: i8 = t.get(4..6)?.parse().ok()?;
    let time = Time::new(h, mi, se, 0).ok()?;
    Some((date.to_datetime(time), utc))
}

/// What Google answers for any RRULE it cannot read.
const BAD_RULE: &str = "Invalid recurrence rule.";

fn parse_rule(body: &str) -> Result<Rule, String> {
    let mut rule = Rule {
        freq: Freq::Daily,
        interval: 1,
        count: None,
        until: None,
        by_day: Vec::new(),
        by_month_day: Vec::new(),
        by_month: Vec::new(),
    };
    let mut freq = None;
    for part in body.split(';').filter(|p| !p.is_empty()) {
        let (k, v) = part.split_once('=').ok_or(BAD_RULE)?;
        match k {
            "FREQ" => freq = Some(parse_freq(v)?),
            "INTERVAL" => rule.interval = v.parse().ok().filter(|n| *n >= 1).ok_or(BAD_RULE)?,
            "COUNT" => rule.count = Some(v.parse().ok().filter(|n| *n >= 1).ok_or(BAD_RULE)?),
            "UNTIL" => rule.until = Some(parse_until(v)?),
            "BYDAY" => rule.by_day.extend(parse_by_day(v)?),
            "BYMONTHDAY" => rule
                .by_month_day
                .extend(parse_numbers(v, |n| n != 0 && (-31..=31).contains(&n))?),
            "BYMONTH" => rule
                .by_month
                .extend(parse_numbers(v, |n| (1..=12).contains(&n))?),
            "WKST" | "BYSETPOS" | "BYHOUR" | "BYMINUTE" | "BYSECOND" | "BYYEARDAY" | "BYWEEKNO" => {
            }
            _ => return Err(BAD_RULE.into()),
        }
    }
    rule.freq = freq.ok_or(BAD_RULE)?;
    if rule.count.is_some() && rule.until.is_some() {
        return Err(BAD_RULE.into());
    }
    Ok(rule)
}

fn parse_freq(v: &str) -> Result<Freq, String> {
    match v {
        "DAILY" => Ok(Freq::Daily),
        "WEEKLY" => Ok(Freq::Weekly),
        "MONTHLY" => Ok(Freq::Monthly),
        "YEARLY" => Ok(Freq::Yearly),
        _ => Err(BAD_RULE.into()),
    }
}

/// `UNTIL`: a date, or a date-time (UTC with `Z`, else read as UTC).
fn parse_until(v: &str) -> Result<Until, String> {
    if let Some(d) = parse_basic_date(v) {
        return Ok(Until::Date(d));
    }
    let (dt, _) = parse_basic_datetime(v).ok_or(BAD_RULE)?;
    Ok(Until::At(
        dt.to_zoned(TimeZone::UTC)
            .map_err(|_| BAD_RULE)?
            .timestamp(),
    ))
}

/// `BYDAY`: weekdays, each with an optional ordinal in ±1..=5 (`2TU`, `-1FR`).
fn parse_by_day(v: &str) -> Result<Vec<(Option<i8>, Weekday)>, String> {
    v.split(',')
        .map(|item| {
            let split = item.len().saturating_sub(2);
            // (Not on a character boundary: not a weekday code either.)
            let (ord, code) = item.split_at_checked(split).ok_or(BAD_RULE)?;
            let wd = weekday(code).ok_or(BAD_RULE)?;
            if ord.is_empty() {
                return Ok((None, wd));
            }
            let n: i8 = ord.parse().map_err(|_| BAD_RULE)?;
            if n == 0 || !(-5..=5).contains(&n) {
                return Err(BAD_RULE.into());
            }
            Ok((Some(n), wd))
        })
        .collect()
}

/// A comma-separated list of numbers, each one `valid`.
fn parse_numbers(v: &str, valid: impl Fn(i8) -> bool) -> Result<Vec<i8>, String> {
    v.split(',')
        .map(|item| match item.parse::<i8>() {
            Ok(n) if valid(n) => Ok(n),
            _ => Err(BAD_RULE.into()),
        })
        .collect()
}

fn parse_dates(header: &str, values: &str, tz: &TimeZone) -> Result<Vec<When>, String> {
    let mut value_tz = tz.clone();
    let mut is_date = false;
    for param in header.split(';').skip(1) {
        if let Some(name) = param.strip_prefix("TZID=") {
            value_tz = time_zone(name)?;
        } else if param == "VALUE=DATE" {
            is_date = true;
        }
    }
    let mut out = Vec::new();
    for v in values.split(',').filter(|v| !v.is_empty()) {
        if is_date || v.len() == 8 {
            out.push(When::Date(
                parse_basic_date(v).ok_or("Invalid recurrence rule.")?,
            ));
            continue;
        }
        let (dt, utc) = parse_basic_datetime(v).ok_or("Invalid recurrence rule.")?;
        let zone = if utc { TimeZone::UTC } else { value_tz.clone() };
        let z = dt.to_zoned(zone).map_err(|_| "Invalid recurrence rule.")?;
        out.push(When::At(z.timestamp().to_zoned(tz.clone())));
    }
    Ok(out)
}

impl Recurrence {
    /// Parses `RRULE:` / `EXRULE:` / `EXDATE...:` / `RDATE...:` lines.
    pub fn parse(lines: &[String], tz: &TimeZone) -> Result<Recurrence, String> {
        let mut rec = Recurrence::default();
        for line in lines {
            let (header, body) = line.split_once(':').ok_or("Invalid recurrence rule.")?;
            let name = header.split(';').next().unwrap_or("");
            match name {
                "RRULE" => rec.rules.push(parse_rule(body)?),
                "EXDATE" => rec.exdates.extend(parse_dates(header, body, tz)?),
                "RDATE" => rec.rdates.extend(parse_dates(header, body, tz)?),
                _ => return Err("Invalid recurrence rule.".into()),
            }
        }
        if rec.rules.is_empty() && rec.rdates.is_empty() {
            return Err("Invalid recurrence rule.".into());
        }
        Ok(rec)
    }

    /// Occurrence starts from `start`, up to `horizon` and at most `max`, sorted.
    pub fn occurrences(&self, start: &When, horizon: Timestamp, max: usize) -> Vec<When> {
        let (tz, t0) = match start {
            When::Date(d) => (TimeZone::UTC, d.to_datetime(Time::midnight())),
            When::At(z) => (z.time_zone().clone(), z.datetime()),
        };
        let mk = |dt: DateTime| -> Option<When> {
            match start {
                When::Date(_) => Some(When::Date(dt.date())),
                When::At(_) => dt.to_zoned(tz.clone()).ok().map(When::At),
            }
        };
        let mut out: Vec<When> = Vec::new();
        for rule in &self.rules {
            let mut produced = 0usize;
            for dt in candidates(rule, t0) {
                let Some(w) = mk(dt) else { continue };
                let instant = w.instant(&TimeZone::UTC);
                let past_until = match &rule.until {
                    Some(Until::Date(d)) => dt.date() > *d,
                    Some(Until::At(ts)) => match &w {
                        When::Date(d) => *d > ts.to_zoned(TimeZone::UTC).date(),
                        When::At(_) => instant > *ts,
                    },
                    None => false,
                };
                if past_until || instant > horizon {
                    break;
                }
                produced += 1;
                if rule.count.is_some_and(|c| produced > c) || produced > max {
                    break;
                }
                out.push(w);
            }
        }
        for r in &self.rdates {
            let w = match (start, r) {
                (When::At(z), When::Date(d)) => {
                    match d.to_datetime(z.time()).to_zoned(tz.clone()) {
                        Ok(x) => When::At(x),
                        Err(_) => continue,
                    }
                }
                (When::Date(_), When::At(z)) => When::Date(z.date()),
                (_, other) => other.clone(),
            };
            out.push(w);
        }
        let key = |w: &When| match w {
            When::Date(d) => d
                .to_datetime(Time::midnight())
                .to_zoned(TimeZone::UTC)
                .map(|z| z.timestamp())
                .unwrap_or(Timestamp::UNIX_EPOCH),
            When::At(z) => z.timestamp(),
        };
        out.retain(|w| {
            !self.exdates.iter().any(|x| match (w, x) {
                (When::Date(a), When::Date(b)) => a == b,
                (When::Date(a), When::At(b)) => *a == b.date(),
                (When::At(a), When::At(b)) => a.timestamp() == b.timestamp(),
                (When::At(a), When::Date(b)) => a.date() == *b,
            })
        });
        out.sort_by_key(key);
        out.dedup_by(|a, b| key(a) == key(b));
        out.truncate(max);
        out
    }
}

fn add_days(d: Date, n: i64) -> Option<Date> {
    d.checked_add(Span::new().try_days(n).ok()?).ok()
}

fn add_months(d: Date, n: i64) -> Option<Date> {
    d.first_of_month()
        .checked_add(Span::new().try_months(n).ok()?)
        .ok()
}

/// Candidate civil start datetimes of one rule, in order (unbounded; callers stop).
fn candidates(rule: &Rule, t0: DateTime) -> impl Iterator<Item = DateTime> + '_ {
    let time = t0.time();
    let d0 = t0.date();
    let mut period: i64 = 0;
    let mut buffer: std::collections::VecDeque<Date> = std::collections::VecDeque::new();
    let mut guard = 0u32;
    std::iter::from_fn(move || loop {
        if let Some(d) = buffer.pop_front() {
            return Some(d.to_datetime(time));
        }
        guard += 1;
        if guard > 20_000 {
            return None;
        }
        let step = period.checked_mul(rule.interval)?;
        period += 1;
        let mut dates: Vec<Date> = match rule.freq {
            Freq::Daily => {
                let d = add_days(d0, step)?;
                let ok_day =
                    rule.by_day.is_empty() || rule.by_day.iter().any(|(_, w)| *w == d.weekday());
                let ok_month = rule.by_month.is_empty() || rule.by_month.contains(&d.month());
                if ok_day && ok_month {
                    vec![d]
                } else {
                    vec![]
                }
            }
            Freq::Weekly => {
                let week_start = add_days(d0, -i64::from(d0.weekday().to_monday_zero_offset()))?;
                let ws = add_days(week_start, step.checked_mul(7)?)?;
                let days: Vec<Weekday> = if rule.by_day.is_empty() {
                    vec![d0.weekday()]
                } else {
                    rule.by_day.iter().map(|(_, w)| *w).collect()
                };
                days.iter()
                    .filter_map(|w| add_days(ws, i64::from(w.to_monday_zero_offset())))
                    .collect()
            }
            Freq::Monthly => {
                let month = add_months(d0, step)?;
                month_dates(rule, month, d0.day())
            }
            Freq::Yearly => {
                let year = d0.year().checked_add(i16::try_from(step).ok()?)?;
                let months: Vec<i8> = if rule.by_month.is_empty() {
                    vec![d0.month()]
                } else {
                    rule.by_month.clone()
                };
                months
                    .iter()
                    .filter_map(|m| Date::new(year, *m, 1).ok())
                    .flat_map(|first| {
                        if rule.by_day.is_empty() && rule.by_month_day.is_empty() {
                            Date::new(first.year(), first.month(), d0.day())
                                .ok()
                                .into_iter()
                                .collect()
                        } else {
                            month_dates(rule, first, d0.day())
                        }
                    })
                    .collect()
            }
        };
        dates.retain(|d| *d >= d0);
        dates.sort();
        dates.dedup();
        buffer.extend(dates);
    })
}

fn month_dates(rule: &Rule, month: Date, default_day: i8) -> Vec<Date> {
    let first = month.first_of_month();
    let days_in = first.days_in_month();
    if !rule.by_day.is_empty() {
        let mut out = Vec::new();
        for (ord, wd) in &rule.by_day {
            match ord {
                Some(n) => {
                    if let Ok(d) = first.nth_weekday_of_month(*n, *wd) {
                        out.push(d);
                    }
                }
                None => {
                    for day in 1..=days_in {
                        if let Ok(d) = Date::new(first.year(), first.month(), day) {
                            if d.weekday() == *wd {
                                out.push(d);
                            }
                        }
                    }
                }
            }
        }
        if !rule.by_month_day.is_empty() {
            out.retain(|d| rule.by_month_day.contains(&d.day()));
        }
        return out;
    }
    let days: Vec<i8> = if rule.by_month_day.is_empty() {
        vec![default_day]
    } else {
        rule.by_month_day.clone()
    };
    days.iter()
        .filter_map(|d| {
            let day = if *d < 0 { days_in + 1 + d } else { *d };
            Date::new(first.year(), first.month(), day).ok()
        })
        .collect()
}

/// The duration of an event, for shifting instances.
pub fn duration(start: &When, end: &When) -> (SignedDuration, i64) {
    match (start, end) {
        (When::Date(a), When::Date(b)) => (SignedDuration::ZERO, (*b - *a).get_days().into()),
        (When::At(a), When::At(b)) => (b.timestamp().duration_since(a.timestamp()), 0),
        _ => (SignedDuration::ZERO, 0),
    }
}

/// The end of an occurrence that starts at `start`.
pub fn shifted_end(start: &When, dur: (SignedDuration, i64)) -> When {
    match start {
        When::Date(d) => When::Date(add_days(*d, dur.1).unwrap_or(*d)),
        When::At(z) => When::At(z.checked_add(dur.0).unwrap_or_else(|_| z.clone())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_byday_that_is_not_a_weekday_is_refused_not_a_panic() {
        assert_eq!(
            parse_by_day("2TU,-1FR").unwrap(),
            vec![(Some(2), Weekday::Tuesday), (Some(-1), Weekday::Friday)]
        );
        // The last two bytes of "éa" split the "é": refused like any bad rule.
        for bad in ["éa", "1é", "XX", "0MO", "6MO"] {
            assert!(parse_by_day(bad).is_err(), "{bad}");
        }
    }
}
