//! Paging: the walk over one endpoint's pages, where each next page is, and when the list has
//! ended.
//!
//! A fetch is all or nothing, so the walk refuses what would pass a partial or endless list
//! for a complete one: a list that ends before the total the system gave, a page larger than
//! asked for (the system ignores the size, so a short page proves nothing), the same page twice,
//! the same next link or cursor twice, a cursor page without its "more" flag, a next link to
//! another origin, and more pages than `limits.max_pages`. Pages whose number is known after
//! the first (a total, and a full first page) are read a few at a time.

use std::collections::HashSet;

use futures_util::{StreamExt, TryStreamExt};
use reqwest::Url;
use serde_json::Value;

use super::client::PageOut;
use super::definition::{Pagination, ParamPlace};
use super::{Endpoint, FetchError, FetchOptions, HttpSource, SendFuture};
use crate::connectors::mapping::{member, scalar_text};

/// Where the next page is.
enum Next {
    Done,
    /// A page addressed by its number and the records before it (offset, page number or
    /// SCIM startIndex).
    At {
        number: u32,
        offset: u64,
    },
    Cursor(String),
    Url(String),
}

/// What a walk over one endpoint's pages has seen so far.
#[derive(Default)]
struct Walk {
    /// Records read.
    read: u64,
    /// The number of records the system says there are, where its first page says.
    total: Option<u64>,
    /// The first record of the page before: a system that ignores the paging parameters
    /// sends the same page again and again, which must not pass for more people.
    previous_first: Option<Value>,
    /// Every next link and cursor followed, so that one sent twice fails the fetch.
    seen_links: HashSet<String>,
}

/// Pages whose number is known after the first: their size, and the number of the last.
#[derive(Clone, Copy)]
struct KnownPages {
    size: u32,
    last: u32,
}

impl HttpSource {
    /// Reads every page of one endpoint (or the first, if asked), handing each page's records
    /// to `on_page` in page order. Returns the pages read and the total the system gave.
    pub(super) async fn walk(
        &self,
        ep: &Endpoint<'_>,
        options: &FetchOptions,
        mut on_page: impl FnMut(u32, &[Value]) -> Result<(), FetchError>,
    ) -> Result<(u32, Option<u64>), FetchError> {
        let base_url = self
            .render(&ep.request.url, &ep.extra_vars)
            .map_err(|m| self.setup(m))?;
        let mut walk = Walk::default();
        let mut next = Next::At {
            number: 1,
            offset: 0,
        };
        let mut page: u32 = 0;
        loop {
            page += 1;
            let max_pages = self.definition.limits.max_pages;
            if page > max_pages {
                return Err(self.respond(
                    ep,
                    page,
                    format!("more than {max_pages} pages; raise limits.max_pages if this is right"),
                ));
            }
            let (url, query) = self.address(ep, &base_url, &next, page)?;
            let paged = self.page_endpoint(ep, &next, page);
            let out = self
                .get_page(paged.as_ref().unwrap_or(ep), &url, &query, page, options)
                .await?;
            let items = self.items(ep, &out.body, page)?;
            if page == 1 {
                walk.total = self.first_total(ep, &out.body)?;
            }
            self.take_page(ep, &mut walk, page, items, &mut on_page)?;
            if ep.first_page_only {
                return Ok((page, walk.total));
            }
            let at = Progress {
                page,
                len: items.len(),
                read: walk.read,
                total: walk.total,
            };
            next = self.next(ep, &out, &url, at)?;
            if let Next::Url(link) | Next::Cursor(link) = &next
                && !walk.seen_links.insert(link.clone())
            {
                return Err(self.respond(
                    ep,
                    page,
                    "the system sent the same next page twice; it would never end".to_string(),
                ));
            }
            // Pages known up front (a total, and a full first page) are read a few at a time.
            if page == 1
                && let Some(known) = self.known_pages(ep, &next, &walk)?
            {
                (page, next) = self
                    .read_known_pages(ep, options, &base_url, known, &mut walk, &mut on_page)
                    .await?;
            }
            if let Next::Done = next {
                self.check_complete(ep, page, &walk)?;
                return Ok((page, walk.total));
            }
        }
    }

    /// A response error at a page of this endpoint.
    fn respond(&self, ep: &Endpoint<'_>, page: u32, message: String) -> FetchError {
        FetchError::Response {
            system: self.definition.name.clone(),
            what: ep.what.clone(),
            page,
            message,
        }
    }

    /// The total the first page gives; SCIM always gives one.
    fn first_total(&self, ep: &Endpoint<'_>, body: &Value) -> Result<Option<u64>, FetchError> {
        let total = self.total(ep.pagination, body);
        if matches!(ep.pagination, Pagination::Scim { .. }) && total.is_none() {
            return Err(self.respond(
                ep,
                1,
                "a SCIM ListResponse without totalResults".to_string(),
            ));
        }
        Ok(total)
    }

    /// Counts a page's records and hands them to `on_page`, unless the page starts with the
    /// same record as the page before.
    fn take_page(
        &self,
        ep: &Endpoint<'_>,
        walk: &mut Walk,
        page: u32,
        items: &[Value],
        on_page: &mut impl FnMut(u32, &[Value]) -> Result<(), FetchError>,
    ) -> Result<(), FetchError> {
        match items.first() {
            Some(first) if walk.previous_first.as_ref() == Some(first) => {
                return Err(self.respond(
                    ep,
                    page,
                    "this page starts with the same record as the page before; the system \
                     seems to ignore the paging parameters"
                        .to_string(),
                ));
            }
            first => walk.previous_first = first.cloned(),
        }
        walk.read += items.len() as u64;
        on_page(page, items)
    }

    /// The pages known up front, when the first page gives a total and came back full.
    fn known_pages(
        &self,
        ep: &Endpoint<'_>,
        next: &Next,
        walk: &Walk,
    ) -> Result<Option<KnownPages>, FetchError> {
        let (Next::At { .. }, Some(size), Some(total)) =
            (next, page_size(ep.pagination), walk.total)
        else {
            return Ok(None);
        };
        if walk.read != u64::from(size) {
            return Ok(None);
        }
        let last = u32::try_from(total.div_ceil(u64::from(size.max(1)))).unwrap_or(u32::MAX);
        let max_pages = self.definition.limits.max_pages;
        if last > max_pages {
            return Err(self.respond(
                ep,
                1,
                format!(
                    "{total} records need {last} pages, more than limits.max_pages ({max_pages})"
                ),
            ));
        }
        Ok(Some(KnownPages { size, last }))
    }

    /// Reads pages 2 to the last a few at a time, handing them to `on_page` in order. Returns
    /// the last page read and where the next one is.
    async fn read_known_pages(
        &self,
        ep: &Endpoint<'_>,
        options: &FetchOptions,
        base_url: &str,
        KnownPages { size, last }: KnownPages,
        walk: &mut Walk,
        on_page: &mut impl FnMut(u32, &[Value]) -> Result<(), FetchError>,
    ) -> Result<(u32, Next), FetchError> {
        let mut pages = futures_util::stream::iter(2..=last)
            .map(|p| -> SendFuture<'_, _> {
                Box::pin(async move {
                    let at = Next::At {
                        number: p,
                        offset: u64::from(p - 1) * u64::from(size),
                    };
                    let (url, query) = self.address(ep, base_url, &at, p)?;
                    let paged = self.page_endpoint(ep, &at, p);
                    let out = self
                        .get_page(paged.as_ref().unwrap_or(ep), &url, &query, p, options)
                        .await?;
                    Ok::<_, FetchError>((p, out))
                })
            })
            .buffered(self.definition.limits.concurrency.max(1));
        let mut page = 1;
        let mut last_len = size as usize;
        while let Some((p, out)) = pages.try_next().await? {
            let items = self.items(ep, &out.body, p)?;
            last_len = items.len();
            self.take_page(ep, walk, p, items, on_page)?;
            page = p;
        }
        // A last page that came back full may mean people were added meanwhile.
        let next = if last > 1 && last_len >= size as usize {
            Next::At {
                number: last + 1,
                offset: walk.read,
            }
        } else {
            Next::Done
        };
        Ok((page, next))
    }

    /// A list that ends before the total the system gave is a partial list, and a partial
    /// list must deactivate nobody.
    fn check_complete(&self, ep: &Endpoint<'_>, page: u32, walk: &Walk) -> Result<(), FetchError> {
        if let Some(total) = walk.total
            && walk.read < total
        {
            return Err(self.respond(
                ep,
                page,
                format!(
                    "the list ended after {} records, but the system said there are {total}",
                    walk.read
                ),
            ));
        }
        Ok(())
    }

    /// The endpoint as it is asked for one page: where the page number and size go in the
    /// body (`in = "body"`), merged into it; else the endpoint itself.
    fn page_endpoint<'e>(&self, ep: &Endpoint<'e>, next: &Next, page: u32) -> Option<Endpoint<'e>> {
        let Pagination::Page {
            page_param,
            size_param,
            size,
            first,
            place: ParamPlace::Body,
            ..
        } = ep.pagination
        else {
            return None;
        };
        let number = match next {
            Next::At { number, .. } => *number,
            _ => page,
        };
        let mut members = serde_json::Map::new();
        members.insert(page_param.clone(), Value::from(first + number - 1));
        if let Some(p) = size_param {
            members.insert(p.clone(), Value::from(*size));
        }
        let extra_body = match &ep.extra_body {
            Some(extra) => super::client::merged(extra, &Value::Object(members)),
            None => Value::Object(members),
        };
        Some(Endpoint {
            extra_body: Some(extra_body),
            ..ep.clone()
        })
    }

    /// The URL and query of a page.
    fn address(
        &self,
        ep: &Endpoint<'_>,
        base_url: &str,
        next: &Next,
        page: u32,
    ) -> Result<(String, Vec<(String, String)>), FetchError> {
        if let Next::Url(url) = next {
            return Ok((url.clone(), Vec::new()));
        }
        let mut query: Vec<(String, String)> = Vec::new();
        for (k, v) in &ep.request.query {
            if !ep.extra_query.contains_key(k) {
                query.push((
                    k.clone(),
                    self.render(v, &ep.extra_vars).map_err(|m| self.setup(m))?,
                ));
            }
        }
        for (k, v) in &ep.extra_query {
            query.push((
                k.clone(),
                self.render(v, &ep.extra_vars).map_err(|m| self.setup(m))?,
            ));
        }
        let (number, offset) = match next {
            Next::At { number, offset } => (*number, *offset),
            _ => (page, 0),
        };
        match ep.pagination {
            Pagination::None | Pagination::NextLink { .. } | Pagination::LinkHeader => {}
            Pagination::Offset {
                offset_param,
                limit_param,
                limit,
                ..
            } => {
                query.push((offset_param.clone(), offset.to_string()));
                query.push((limit_param.clone(), limit.to_string()));
            }
            Pagination::Page {
                page_param,
                size_param,
                size,
                first,
                place: ParamPlace::Query,
                ..
            } => {
                query.push((page_param.clone(), (first + number - 1).to_string()));
                if let Some(p) = size_param {
                    query.push((p.clone(), size.to_string()));
                }
            }
            // Sent in the body instead: see `page_body`.
            Pagination::Page {
                place: ParamPlace::Body,
                ..
            } => {}
            Pagination::Cursor {
                cursor_param,
                size_param,
                size,
                ..
            } => {
                if let Next::Cursor(cursor) = next {
                    query.push((cursor_param.clone(), cursor.clone()));
                }
                if let (Some(p), Some(size)) = (size_param, size) {
                    query.push((p.clone(), size.to_string()));
                }
            }
            Pagination::Scim { count } => {
                query.push(("startIndex".to_string(), (offset + 1).to_string()));
                query.push(("count".to_string(), count.to_string()));
            }
        }
        Ok((base_url.to_string(), query))
    }

    /// The records of a page.
    fn items<'v>(
        &self,
        ep: &Endpoint<'_>,
        body: &'v Value,
        page: u32,
    ) -> Result<&'v [Value], FetchError> {
        match ep.records.path.select(body) {
            Some(Value::Array(items)) => Ok(items.as_slice()),
            None if ep.records.missing_is_empty => Ok(&[]),
            _ => Err(FetchError::Response {
                system: self.definition.name.clone(),
                what: ep.what.clone(),
                page,
                message: format!(
                    "no list of records at `{}` in the response",
                    ep.records.path
                ),
            }),
        }
    }

    /// The number of records the system says there are, where the first page says.
    fn total(&self, pagination: &Pagination, body: &Value) -> Option<u64> {
        let path = match pagination {
            Pagination::Scim { .. } => {
                return member(body, "totalResults", self.definition.case_insensitive)
                    .and_then(Value::as_u64);
            }
            Pagination::Offset { total_path, .. } | Pagination::Page { total_path, .. } => {
                total_path.as_ref()?
            }
            _ => return None,
        };
        path.select(body).and_then(|v| {
            v.as_u64()
                .or_else(|| v.as_str().and_then(|s| s.trim().parse().ok()))
        })
    }

    /// Where the page after this one is, or `Done`.
    fn next(
        &self,
        ep: &Endpoint<'_>,
        out: &PageOut,
        url: &str,
        at: Progress,
    ) -> Result<Next, FetchError> {
        let Progress {
            page,
            len,
            read,
            total,
        } = at;
        let more = |full: bool| {
            let more = match total {
                Some(total) => len > 0 && read < total,
                None => len > 0 && full,
            };
            if more {
                Next::At {
                    number: page + 1,
                    offset: read,
                }
            } else {
                Next::Done
            }
        };
        let over = |asked: u32, param: &str| FetchError::Response {
            system: self.definition.name.clone(),
            what: ep.what.clone(),
            page,
            message: format!(
                "the page holds {len} records, more than the {asked} asked for; the system \
                     ignores `{param}`, so a short page cannot be trusted to be the last"
            ),
        };
        Ok(match ep.pagination {
            Pagination::None => Next::Done,
            Pagination::Offset {
                limit, limit_param, ..
            } => {
                if len as u64 > u64::from(*limit) {
                    return Err(over(*limit, limit_param));
                }
                more(len as u64 >= u64::from(*limit))
            }
            Pagination::Page {
                size,
                size_param: Some(size_param),
                ..
            } if len as u64 > u64::from(*size) => return Err(over(*size, size_param)),
            Pagination::Page { size, .. } => more(len as u64 >= u64::from(*size)),
            Pagination::Scim { .. } => {
                let total = member(&out.body, "totalResults", self.definition.case_insensitive)
                    .and_then(Value::as_u64);
                if len > 0 && total.is_some_and(|t| read < t) {
                    Next::At {
                        number: page + 1,
                        offset: read,
                    }
                } else {
                    Next::Done
                }
            }
            Pagination::Cursor {
                path, more_path, ..
            } => {
                let cursor = path
                    .select(&out.body)
                    .and_then(scalar_text)
                    .filter(|c| !c.trim().is_empty());
                let more = match more_path {
                    None => true,
                    Some(p) => match p.select(&out.body).and_then(scalar_text) {
                        Some(v) => matches!(v.to_lowercase().as_str(), "true" | "1"),
                        // Without its "more" flag the page cannot say it was the last.
                        None => {
                            return Err(FetchError::Response {
                                system: self.definition.name.clone(),
                                what: ep.what.clone(),
                                page,
                                message: format!(
                                    "no `{p}` in the response to say whether more pages follow"
                                ),
                            });
                        }
                    },
                };
                match cursor {
                    Some(c) if more => Next::Cursor(c),
                    _ => Next::Done,
                }
            }
            Pagination::NextLink { path } => {
                match path
                    .select(&out.body)
                    .and_then(Value::as_str)
                    .filter(|s| !s.trim().is_empty())
                {
                    Some(link) => Next::Url(self.follow(ep, url, link, page)?),
                    None => Next::Done,
                }
            }
            Pagination::LinkHeader => match &out.link_next {
                Some(link) => Next::Url(self.follow(ep, url, link, page)?),
                None => Next::Done,
            },
        })
    }

    /// A next link made absolute against the page it came from. It must stay on the same
    /// scheme, host and port: credentials are not sent anywhere else.
    fn follow(
        &self,
        ep: &Endpoint<'_>,
        from: &str,
        link: &str,
        page: u32,
    ) -> Result<String, FetchError> {
        let fail = |message: String| FetchError::Response {
            system: self.definition.name.clone(),
            what: ep.what.clone(),
            page,
            message,
        };
        let base =
            Url::parse(from).map_err(|e| fail(format!("bad URL {}: {e}", self.shown(from))))?;
        let next = base
            .join(link.trim())
            .map_err(|e| fail(format!("bad next link {}: {e}", self.shown(link))))?;
        if next.origin() != base.origin() {
            return Err(fail(format!(
                "the next link {} leaves {}; credentials are only sent to the system's own address",
                self.shown(next.as_str()),
                base.origin().ascii_serialization()
            )));
        }
        Ok(next.to_string())
    }
}

/// The page size of a pagination whose pages can be addressed by number.
fn page_size(pagination: &Pagination) -> Option<u32> {
    match pagination {
        Pagination::Offset { limit, .. } => Some(*limit),
        Pagination::Page { size, .. } => Some(*size),
        Pagination::Scim { count } => Some(*count),
        _ => None,
    }
}

/// The `rel="next"` target of a `Link` header value (RFC 8288), if it has one.
pub fn link_next(header: &str) -> Option<String> {
    let mut rest = header;
    while let Some(open) = rest.find('<') {
        let close = open + rest[open..].find('>')?;
        let target = &rest[open + 1..close];
        let params_end = rest[close..]
            .find('<')
            .map(|i| close + i)
            .unwrap_or(rest.len());
        let params = &rest[close + 1..params_end];
        let is_next = params.split(';').any(|p| {
            let p = p.trim().trim_end_matches(',').trim();
            p.split_once('=').is_some_and(|(k, v)| {
                k.trim().eq_ignore_ascii_case("rel")
                    && v.trim()
                        .trim_matches('"')
                        .split_whitespace()
                        .any(|r| r.eq_ignore_ascii_case("next"))
            })
        });
        if is_next {
            return Some(target.trim().to_string());
        }
        rest = &rest[params_end..];
    }
    None
}

/// Where a walk is after a page: that page's number and record count, the records read so
/// far, and the total the system gave, if any.
#[derive(Clone, Copy, Debug)]
struct Progress {
    page: u32,
    len: usize,
    read: u64,
    total: Option<u64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn link_header_gives_the_next_target_among_others() {
        let header = r#"<https://hr.example/people?page=1>; rel="prev", <https://hr.example/people?page=3>; rel="next", <https://hr.example/people?page=9>; rel="last""#;

        assert_eq!(
            link_next(header).as_deref(),
            Some("https://hr.example/people?page=3")
        );
        assert_eq!(
            link_next(r#"</p?page=2>; rel="next last""#).as_deref(),
            Some("/p?page=2")
        );
        assert_eq!(
            link_next(r#"<https://hr.example/p?page=1>; rel="prev""#),
            None
        );
        assert_eq!(link_next(""), None);
    }
}
