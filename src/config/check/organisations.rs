//! The check of `[organisations.SLUG]`: at least one, each with a key that is safe in URLs and
//! logs, a time zone HR dates can be read in, a locale the emails exist in, and digest
//! addresses that are addresses.

use chrono_tz::Tz;

use crate::config::{Loaded, Problem};

pub(super) fn organisations(cfg: &Loaded) -> Vec<Problem> {
    let organisations = &cfg.settings.organisations;
    let mut problems = Vec::new();
    if organisations.is_empty() {
        problems.push(cfg.problem("organisations", "no organisation is configured"));
    }
    for (slug, org) in organisations {
        if slug.is_empty()
            || !slug
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        {
            problems.push(cfg.problem(
                format!("organisations.{slug}"),
                "an organisation key may hold only letters, digits, `_` and `-`",
            ));
        }
        if org.time_zone.parse::<Tz>().is_err() {
            problems.push(cfg.problem(
                format!("organisations.{slug}.time_zone"),
                format!(
                    "`{}` is not an IANA time zone such as Europe/Amsterdam",
                    org.time_zone
                ),
            ));
        }
        if crate::mail::Locale::parse(&org.locale).is_none() {
            problems.push(cfg.problem(
                format!("organisations.{slug}.locale"),
                format!("`{}` is not a supported locale (en, nl)", org.locale),
            ));
        }
        if let Some(from) = &org.mail_from
            && from.parse::<lettre::message::Mailbox>().is_err()
        {
            problems.push(cfg.problem(
                format!("organisations.{slug}.mail_from"),
                format!(
                    "`{from}` is not a sender such as `Zonnehof Zorg <no-reply@zonnehof.example>`"
                ),
            ));
        }
        for (i, address) in org.digest_to.iter().enumerate() {
            if address.trim().parse::<lettre::Address>().is_err() {
                problems.push(cfg.problem(
                    format!("organisations.{slug}.digest_to[{i}]"),
                    format!("`{address}` is not an email address"),
                ));
            }
        }
    }
    problems
}
