//! The page language, from the browser's `Accept-Language` (RFC 9110 §12.5.4): the
//! languages of the products this one learns from (English, Vietnamese, Japanese, Russian,
//! Czech), English for any other.

/// A language the pages are written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lang {
    En,
    Vi,
    Ja,
    Ru,
    Cs,
}

impl Lang {
    pub const ALL: [Lang; 5] = [Lang::En, Lang::Vi, Lang::Ja, Lang::Ru, Lang::Cs];

    /// The BCP 47 tag, for `<html lang>` and `Content-Language`.
    pub fn tag(self) -> &'static str {
        match self {
            Lang::En => "en",
            Lang::Vi => "vi",
            Lang::Ja => "ja",
            Lang::Ru => "ru",
            Lang::Cs => "cs",
        }
    }

    /// The language of a tag (`"ja"`, `"ja-JP"`), if the pages are written in it.
    pub fn from_tag(tag: &str) -> Option<Lang> {
        Lang::from_primary(tag.split('-').next().unwrap_or(""))
    }

    fn from_primary(primary: &str) -> Option<Lang> {
        Lang::ALL
            .into_iter()
            .find(|l| l.tag().eq_ignore_ascii_case(primary))
    }

    /// The best language for an `Accept-Language` header: the supported one with the highest
    /// q-value (ties go to the earlier entry; `q=0` means "not this one"; `*` and anything
    /// unsupported count as English only where nothing supported is preferred).
    pub fn negotiate(header: Option<&str>) -> Lang {
        let Some(header) = header else {
            return Lang::En;
        };
        let mut best: Option<(u16, Lang)> = None;
        for item in header.split(',').take(32) {
            let mut parts = item.split(';');
            let range = parts.next().unwrap_or("").trim();
            let q = parts
                .find_map(|p| {
                    let (k, v) = p.split_once('=')?;
                    k.trim()
                        .eq_ignore_ascii_case("q")
                        .then(|| parse_q(v.trim()))
                })
                .unwrap_or(Some(1000));
            let Some(q) = q else { continue };
            if q == 0 {
                continue;
            }
            let primary = range.split('-').next().unwrap_or("");
            let lang = if primary == "*" {
                Some(Lang::En)
            } else {
                Lang::from_primary(primary)
            };
            if let Some(lang) = lang {
                if best.is_none_or(|(bq, _)| q > bq) {
                    best = Some((q, lang));
                }
            }
        }
        best.map_or(Lang::En, |(_, l)| l)
    }

    /// From a request's headers.
    pub fn of(headers: &http::HeaderMap) -> Lang {
        Lang::negotiate(
            headers
                .get(http::header::ACCEPT_LANGUAGE)
                .and_then(|v| v.to_str().ok()),
        )
    }
}

/// A q-value in thousandths (`0` to `1000`), or `None` if malformed.
fn parse_q(v: &str) -> Option<u16> {
    let (int, frac) = v.split_once('.').unwrap_or((v, ""));
    if frac.len() > 3 || !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let frac_value: u16 = format!("{frac:0<3}").parse().ok()?;
    match int {
        "0" => Some(frac_value),
        "1" if frac_value == 0 => Some(1000),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_highest_supported_q_value_wins() {
        let cases = [
            (None, Lang::En),
            (Some(""), Lang::En),
            (Some("vi-VN,vi;q=0.9,en;q=0.8"), Lang::Vi),
            (Some("de-DE,de;q=0.9,ja;q=0.5"), Lang::Ja),
            (Some("en;q=0.3, cs;q=0.7"), Lang::Cs),
            (Some("ru;q=0, cs;q=0.1"), Lang::Cs),
            (Some("RU-ru"), Lang::Ru),
            (Some("fr, *;q=0.1"), Lang::En),
            (Some("ja;q=1.0, vi;q=1"), Lang::Ja),
            (Some("ja;q=2, vi;q=0.5"), Lang::Vi),
            (Some("ja;q=abc"), Lang::En),
            (Some("zh-Hant"), Lang::En),
        ];
        for (header, want) in cases {
            assert_eq!(Lang::negotiate(header), want, "{header:?}");
        }
    }
}
