//! Per-record requests (`[expand.<member>]`): for systems that list people with only the ids
//! of what belongs to them (Personio v2 lists persons, and each person's employments are at
//! `/v2/persons/{id}/employments`), one request (with its own paging) per person, whose
//! records are set on the person as `<member>` before the fields are read.
//!
//! Values of the person go into the request as `{record:<path>}`. Such a value is a key the
//! system gave (an id), so it is taken only when it is plain (letters, digits, `-`, `_`, `.`,
//! `~`): a value that could change the request's path or query fails the fetch instead.

use std::collections::BTreeMap;

use futures_util::{StreamExt, TryStreamExt};
use serde_json::Value;

use super::definition::ExpandSpec;
use super::{Endpoint, FetchError, FetchOptions, HttpSource, SendFuture};
use crate::connectors::mapping::{JsonPath, scalar_text};

/// People expanded at once before their records are read: bounds the pages held in memory.
const BATCH: usize = 256;

/// The `{record:<path>}` placeholders of a text, as the paths they name.
pub(super) fn record_placeholders(text: &str) -> Vec<String> {
    let mut found = Vec::new();
    let mut rest = text;
    while let Some(open) = rest.find("{record:") {
        rest = &rest[open + "{record:".len()..];
        let Some(close) = rest.find('}') else { break };
        let path = rest[..close].to_string();
        if !found.contains(&path) {
            found.push(path);
        }
        rest = &rest[close..];
    }
    found
}

/// Every text of a request that may hold placeholders.
pub(super) fn request_texts(spec: &ExpandSpec) -> Vec<String> {
    let r = &spec.request;
    let mut texts = vec![r.url.clone()];
    texts.extend(r.query.values().cloned());
    texts.extend(r.headers.values().cloned());
    if let Some(body) = &r.body {
        texts.push(body.to_string());
    }
    texts
}

/// Whether a value can go into a URL as it is.
fn plain(value: &str) -> bool {
    !value.is_empty()
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '~'))
        && value != "."
        && value != ".."
}

impl HttpSource {
    /// The people of one page with every `[expand.*]` member set, in their order, read a few
    /// at a time (`limits.concurrency`).
    pub(super) async fn expand_all(
        &self,
        items: Vec<Value>,
        source_name: &str,
        options: &FetchOptions,
    ) -> Result<Vec<Value>, FetchError> {
        let mut out = Vec::with_capacity(items.len());
        let mut items = items.into_iter().enumerate().peekable();
        while items.peek().is_some() {
            let batch: Vec<SendFuture<'_, Result<Value, FetchError>>> = items
                .by_ref()
                .take(BATCH)
                .map(|(i, item)| -> SendFuture<'_, _> {
                    Box::pin(self.expand_one(item, source_name, i + 1, options))
                })
                .collect();
            let expanded: Vec<Value> = futures_util::stream::iter(batch)
                .buffered(self.definition.limits.concurrency.max(1))
                .try_collect()
                .await?;
            out.extend(expanded);
        }
        Ok(out)
    }

    /// One person with every `[expand.*]` member set to the records its request gives.
    async fn expand_one(
        &self,
        mut item: Value,
        source_name: &str,
        index: usize,
        options: &FetchOptions,
    ) -> Result<Value, FetchError> {
        for (member, spec) in &self.definition.expand {
            let mut vars = BTreeMap::new();
            for path in request_texts(spec)
                .iter()
                .flat_map(|t| record_placeholders(t))
            {
                let value = JsonPath::parse(&path)
                    .ok()
                    .and_then(|p| p.select(&item).and_then(scalar_text))
                    .filter(|v| plain(v))
                    .ok_or_else(|| FetchError::Response {
                        system: self.definition.name.clone(),
                        what: format!("expand {member} of {source_name}, record {index}"),
                        page: 1,
                        message: format!(
                            "`{{record:{path}}}` has no plain value (letters, digits, `-`, `_`, `.`, `~`)"
                        ),
                    })?;
                vars.insert(format!("record:{path}"), value);
            }
            let what = format!(
                "{member} {}",
                vars.values().cloned().collect::<Vec<_>>().join("-")
            );
            let mut endpoint = Endpoint::new(what, &spec.request, &spec.pagination, &spec.records);
            endpoint.extra_vars = vars;
            let mut records = Vec::new();
            let sub_options = FetchOptions {
                since: None,
                first_page_only: false,
                raw_dir: options.raw_dir.clone(),
                progress: crate::domain::Progress::default(),
            };
            self.walk(&endpoint, &sub_options, |_, items| {
                records.extend(items.iter().cloned());
                Ok(())
            })
            .await?;
            if let Value::Object(object) = &mut item {
                object.insert(member.clone(), Value::Array(records));
            }
        }
        Ok(item)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_placeholders_name_their_paths_once() {
        assert_eq!(
            record_placeholders("{base_url}/v2/persons/{record:id}/x/{record:a.b}?y={record:id}"),
            ["id", "a.b"]
        );
        assert!(record_placeholders("{record:open").is_empty());
    }

    proptest::proptest! {
        #[test]
        fn record_placeholders_of_any_text_are_found_without_panic(text in "\\PC{0,40}|[{}a-z:.]{0,30}") {
            for path in record_placeholders(&text) {
                let placeholder = format!("{{record:{path}}}");
                proptest::prop_assert!(text.contains(&placeholder), "{path:?} in {text:?}");
            }
        }
    }

    #[test]
    fn only_plain_values_go_into_a_request() {
        assert!(plain("2210001"));
        assert!(plain("a8323b44-4af9-49d3-925e-04b9896e46ff"));
        for hostile in [
            "",
            ".",
            "..",
            "../admin",
            "1?limit=1",
            "1/2",
            "1#x",
            "ä",
            "1 2",
        ] {
            assert!(!plain(hostile), "{hostile}");
        }
    }
}
