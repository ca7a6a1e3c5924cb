//! A connector's settings translated into the planner's [`Policy`]: the one place that knows
//! both the configuration's spelling (`teams_from = "attribute:NAME"`, ownership by field
//! name) and the planner's types, so the planner never reads configuration.

use crate::domain::ConnectorId;
use crate::planner::health::HealthLimits;
use crate::planner::{
    FeedKind, Field, Ownership, Policy, Requirement, RoleRule, TeamSource, Thresholds,
};

use super::{FeedSetting, Loaded};

impl Loaded {
    /// Each configured connector's owner of each field, for the locks on editing by hand
    /// ([`crate::planner::locks`]). A connector that is no longer configured is left out, so
    /// its fields read as `hris`: locked.
    pub fn field_owners(&self) -> crate::planner::locks::FieldOwners {
        self.settings
            .connectors
            .iter()
            .filter_map(|(id, c)| {
                let owners = c
                    .ownership
                    .iter()
                    .filter_map(|(f, o)| Some((Field::parse(f)?, Ownership::parse(o)?)))
                    .collect();
                Some((ConnectorId::parse(id)?, owners))
            })
            .collect()
    }

    /// The planning policy of a connector. Call after [`Loaded::check`] passed.
    pub fn policy(&self, id: &str) -> anyhow::Result<Policy> {
        let c = self
            .settings
            .connectors
            .get(id)
            .ok_or_else(|| anyhow::anyhow!("no connector `{id}` in the configuration"))?;
        let org = self.organisation(&c.organisation)?;
        let connector =
            ConnectorId::parse(id).ok_or_else(|| anyhow::anyhow!("empty connector id"))?;
        let mut policy = Policy::new(connector, org.time_zone);
        policy.feed = match c.feed {
            FeedSetting::Full => FeedKind::Full,
            FeedSetting::Incremental => FeedKind::Incremental,
        };
        policy.send_invites = c.send_invites;
        policy.invite_days_before_start = c.invite_days_before_start;
        if let Some(map) = &c.status_map {
            policy.status_map = map.to_map();
        }
        policy.teams_from = TeamSource::parse(&c.teams_from)
            .ok_or_else(|| anyhow::anyhow!("bad teams_from `{}`", c.teams_from))?;
        for (field, owner) in &c.ownership {
            if let (Some(f), Some(o)) = (Field::parse(field), Ownership::parse(owner)) {
                policy.ownership.insert(f, o);
            }
        }
        policy.roles = c
            .roles
            .iter()
            .map(|r| RoleRule {
                role: r.role.trim().to_string(),
                job_title: r.job_title.clone(),
                department: r.department.clone(),
                employment_type: r.employment_type.clone(),
                require: r
                    .require
                    .iter()
                    .map(|a| Requirement::named(a.trim()))
                    .collect(),
            })
            .collect();
        policy.health = HealthLimits {
            max_drop: c.feed_health.max_drop,
            max_missing_email_rise: c.feed_health.max_missing_email_rise,
            max_drop_count: c.feed_health.max_drop_count,
            max_missing_email_rise_count: c.feed_health.max_missing_email_rise_count,
            first_feed_max_quarantined: c.feed_health.first_feed_max_quarantined,
        };
        policy.thresholds = Thresholds {
            max_deactivations: c.thresholds.max_deactivations,
            max_deactivation_ratio: c.thresholds.max_deactivation_ratio,
            min_deactivations_for_ratio: c.thresholds.min_deactivations_for_ratio,
        };
        Ok(policy)
    }
}
