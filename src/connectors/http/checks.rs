//! The checks a definition passes when it is loaded, before any request is made: every
//! problem is gathered at once (unknown variables, missing lookups, numbers out of range,
//! paging that does not fit the request), so an operator fixes a file in one pass.

use serde_json::Value;

use super::definition::{Auth, Definition, Method, Pagination, ParamPlace, RequestSpec};
use crate::connectors::mapping::{JsonPath, placeholders};

impl Definition {
    /// Every problem of the definition, in the order of its sections.
    pub(super) fn problems(&self) -> Vec<String> {
        let definition = self;
        let mut problems: Vec<String> = definition
            .fields
            .problems()
            .into_iter()
            .map(|(field, message)| format!("fields.{field}: {message}"))
            .collect();
        for (field, lookup) in definition.fields.lookups() {
            if !definition.lookups.contains_key(&lookup) {
                problems.push(format!(
                    "fields.{field}: there is no [lookups.{lookup}] for `lookup = \"{lookup}\"`"
                ));
            }
        }
        let known = |name: &str| {
            definition.variables.iter().any(|v| v == name) || definition.defaults.contains_key(name)
        };
        for (field, name) in definition.fields.placeholders() {
            if !known(&name) {
                problems.push(format!(
                    "fields.{field}: `{{{name}}}` is not a variable of the definition (list it in `variables` or `defaults`)"
                ));
            }
        }
        let mut templates: Vec<(String, String)> = Vec::new();
        let mut request_templates = |at: &str, r: &RequestSpec| {
            templates.push((format!("{at}.url"), r.url.clone()));
            for (k, v) in r.query.iter().chain(&r.headers) {
                templates.push((format!("{at}.{k}"), v.clone()));
            }
            if let Some(body) = &r.body {
                templates.push((format!("{at}.body"), body.to_string()));
            }
        };
        request_templates("request", &definition.request);
        for (name, lookup) in &definition.lookups {
            request_templates(&format!("lookups.{name}.request"), &lookup.request);
        }
        for (name, expand) in &definition.expand {
            request_templates(&format!("expand.{name}.request"), &expand.request);
        }
        templates.extend(auth_templates(&definition.auth));
        for (at, text) in &templates {
            if text.contains("{record:") && !at.starts_with("expand.") {
                problems.push(format!(
                    "{at}: `{{record:…}}` is a value of a person, known only in an [expand.*] request"
                ));
            }
            for name in placeholders(text) {
                if !known(&name) && name != "since" {
                    problems.push(format!(
                        "{at}: `{{{name}}}` is not a variable of the definition (list it in `variables` or `defaults`)"
                    ));
                }
            }
        }
        problems.extend(self.incremental_problems());
        problems.extend(self.shape_problems());
        problems
    }

    /// `[incremental]`: a `{since}` somewhere, a body it can merge into, and a capability
    /// document the definition can address.
    fn incremental_problems(&self) -> Vec<String> {
        let definition = self;
        let known = |name: &str| {
            definition.variables.iter().any(|v| v == name) || definition.defaults.contains_key(name)
        };
        let mut problems = Vec::new();
        if let Some(inc) = &definition.incremental {
            let mut texts: Vec<String> = inc.query.values().cloned().collect();
            if let Some(body) = &inc.body {
                texts.push(body.to_string());
            }
            if let Some(capability) = &inc.capability {
                for name in placeholders(&capability.url) {
                    if !known(&name) {
                        problems.push(format!(
                            "incremental.capability.url: `{{{name}}}` is not a variable of the definition (list it in `variables` or `defaults`)"
                        ));
                    }
                }
            }
            if !texts.iter().any(|t| t.contains("{since}")) {
                problems.push(
                    "incremental: no query parameter or body member uses `{since}`".to_string(),
                );
            }
            if inc.body.is_some()
                && !matches!(definition.request.body, None | Some(Value::Object(_)))
            {
                problems.push(
                    "incremental.body: the request's body is not an object to merge it into"
                        .to_string(),
                );
            }
        }
        problems
    }

    /// Numbers within range, paging that fits the request, a rotated secret that is one of
    /// the definition's, and `[expand.*]` paths that parse.
    fn shape_problems(&self) -> Vec<String> {
        let definition = self;
        let mut problems = Vec::new();
        problems.extend(definition.limits.problems());
        problems.extend(definition.pagination.problems("pagination"));
        if let Auth::Token {
            rotated_secret: Some(rotated),
            ..
        } = &definition.auth
            && !definition.secrets.contains(&rotated.name)
        {
            problems.push(format!(
                "auth.rotated_secret.name: `{}` is not one of the definition's secrets",
                rotated.name
            ));
        }
        if let Pagination::Page {
            place: ParamPlace::Body,
            ..
        } = definition.pagination
            && (definition.request.method != Method::Post
                || !matches!(definition.request.body, None | Some(Value::Object(_))))
        {
            problems.push(
                "pagination.in: \"body\" needs a POST request whose body is a JSON object"
                    .to_string(),
            );
        }
        for (name, expand) in &definition.expand {
            problems.extend(
                expand
                    .pagination
                    .problems(&format!("expand.{name}.pagination")),
            );
            let texts = super::expand::request_texts(expand);
            for path in texts
                .iter()
                .flat_map(|t| super::expand::record_placeholders(t))
            {
                if let Err(e) = JsonPath::parse(&path) {
                    problems.push(format!("expand.{name}.request: `{{record:{path}}}`: {e}"));
                }
            }
        }
        for (name, lookup) in &definition.lookups {
            problems.extend(
                lookup
                    .pagination
                    .problems(&format!("lookups.{name}.pagination")),
            );
        }
        problems
    }
}

/// The texts of an auth table that may hold `{variable}`s, by where they are.
fn auth_templates(auth: &Auth) -> Vec<(String, String)> {
    let mut templates = Vec::new();
    match auth {
        Auth::None => {}
        Auth::Basic { username, password } => {
            templates.push(("auth.username".to_string(), username.clone()));
            templates.push(("auth.password".to_string(), password.clone()));
        }
        Auth::Bearer { token } => templates.push(("auth.token".to_string(), token.clone())),
        Auth::Header { value, .. } => templates.push(("auth.value".to_string(), value.clone())),
        Auth::Token {
            url,
            body,
            form,
            headers,
            assertion,
            ..
        } => {
            // `{assertion}` is known in the token request when there is an assertion step.
            let own = |text: &str| match assertion {
                Some(_) => text.replace("{assertion}", ""),
                None => text.to_string(),
            };
            templates.push(("auth.url".to_string(), own(url)));
            for (k, v) in form.iter().chain(headers) {
                templates.push((format!("auth.{k}"), own(v)));
            }
            if let Some(body) = body {
                templates.push(("auth.body".to_string(), own(&body.to_string())));
            }
            if let Some(a) = assertion {
                templates.push(("auth.assertion.url".to_string(), a.url.clone()));
                for (k, v) in a.form.iter().chain(&a.headers) {
                    templates.push((format!("auth.assertion.{k}"), v.clone()));
                }
                if let Some(body) = &a.body {
                    templates.push(("auth.assertion.body".to_string(), body.to_string()));
                }
            }
        }
    }
    templates
}
