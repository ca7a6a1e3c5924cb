//! Step 6 of the planner: teams from departments (or locations, or an attribute), each person's
//! manager as coach of that person's team (a coach is never also a member), and roles from
//! the connector's rules.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use foldhash::{HashMap, HashMapExt as _};

use super::{
    Action, Change, ChangeKind, Field, NewTeam, Planner, Synced, TeamRef, TeamSource, Update,
};
use crate::domain::{AccountId, EmployeeId, HrRecord, Team, TeamId, TeamKey};

impl<'a> Planner<'a> {
    pub(super) fn team_key(&self, record: &HrRecord) -> Option<(TeamKey, String)> {
        match &self.policy.teams_from {
            TeamSource::Department => record
                .department
                .as_ref()
                .map(|d| (d.key.clone(), d.name.clone())),
            TeamSource::Location => record
                .location
                .as_deref()
                .and_then(TeamKey::parse)
                .map(|k| (k.clone(), k.to_string())),
            TeamSource::Attribute(name) => record
                .attributes
                .get(name)
                .and_then(|v| TeamKey::parse(v))
                .map(|k| (k.clone(), k.to_string())),
        }
    }

    // Step 6: a team's people are the synced records with its key; each person's manager, if
    // synced too, coaches that person's team; a coach is never also a member of the same team.
    pub(super) fn teams_and_coaches(&mut self, synced: &[Synced<'a>]) {
        let view = self.team_view(synced);
        self.rename_teams(&view);
        self.note_managers_who_coach_nobody(&view);
        for (i, s) in synced.iter().enumerate() {
            let coach_allowed = self.may_update(Field::Coach, s.activated, s.creating);
            if coach_allowed {
                self.coach_links(&view, i, s);
            }
            if self.may_update(Field::Team, s.activated, s.creating) {
                self.member_links(&view, i, s, coach_allowed);
            }
        }
    }

    /// What step 6 needs to know of the feed and the directory before it plans anyone's
    /// links: each team and its name, each person's team and the teams they coach.
    fn team_view(&self, synced: &[Synced<'a>]) -> TeamView<'a> {
        let connector = Some(&self.policy.connector);
        let directory: &'a crate::domain::Directory = self.directory;
        let teams: HashMap<&'a TeamKey, &'a Team> = directory
            .teams
            .iter()
            .filter(|t| t.connector.as_ref() == connector)
            .map(|t| (&t.key, t))
            .collect();

        // The name of each team, from the first person (by employee id) in it.
        let mut names: BTreeMap<TeamKey, String> = BTreeMap::new();
        let mut team_of: Vec<Option<TeamKey>> = Vec::with_capacity(synced.len());
        for s in synced {
            let key = self.team_key(s.record);
            if let Some((k, name)) = &key {
                names.entry(k.clone()).or_insert_with(|| name.clone());
            }
            team_of.push(key.map(|(k, _)| k));
        }

        let index: HashMap<&'a EmployeeId, usize> = synced
            .iter()
            .enumerate()
            .map(|(i, s)| (&s.record.employee_id, i))
            .collect();
        let mut coach_of: Vec<BTreeSet<TeamKey>> = vec![BTreeSet::new(); synced.len()];
        let mut uncoached: BTreeMap<EmployeeId, BTreeSet<TeamKey>> = BTreeMap::new();
        for (i, s) in synced.iter().enumerate() {
            let (Some(team), Some(manager)) = (&team_of[i], &s.record.manager_id) else {
                continue;
            };
            match index.get(manager) {
                Some(&m) if m != i => {
                    coach_of[m].insert(team.clone());
                }
                Some(_) => {}
                None => {
                    uncoached
                        .entry(manager.clone())
                        .or_default()
                        .insert(team.clone());
                }
            }
        }

        let links = |list: &'a [crate::domain::TeamLink]| {
            let mut all: HashMap<AccountId, BTreeSet<TeamId>> = HashMap::new();
            let mut ours: HashMap<AccountId, BTreeSet<TeamId>> = HashMap::new();
            for l in list {
                all.entry(l.account_id).or_default().insert(l.team_id);
                if l.connector.as_ref() == connector {
                    ours.entry(l.account_id).or_default().insert(l.team_id);
                }
            }
            (all, ours)
        };
        let (all_members, our_members) = links(&directory.team_members);
        let (all_coaches, our_coaches) = links(&directory.coaches);
        let new_teams = names
            .iter()
            .filter(|(key, _)| !teams.contains_key(key))
            .map(|(key, name)| {
                let team = NewTeam {
                    key: key.clone(),
                    name: name.clone(),
                };
                (key.clone(), Arc::new(team))
            })
            .collect();
        TeamView {
            teams,
            new_teams,
            names,
            team_of,
            index,
            coach_of,
            uncoached,
            all_members,
            our_members,
            all_coaches,
            our_coaches,
            keys_by_id: directory.teams.iter().map(|t| (t.id, &t.key)).collect(),
        }
    }

    /// A team whose department HR names differently now is renamed.
    fn rename_teams(&mut self, view: &TeamView<'a>) {
        for (key, name) in &view.names {
            if let Some(team) = view.teams.get(key)
                && &team.name != name
            {
                self.changes.push(Change {
                    employee_id: None,
                    email: None,
                    field: Some("team_name".to_string()),
                    old: Some(team.name.clone()),
                    new: Some(name.clone()),
                    reason: format!("department `{key}` is named differently in HR"),
                    action: Action::Update(Update::TeamName {
                        team: team.id,
                        name: name.clone(),
                    }),
                });
            }
        }
    }

    /// A manager whose own record is quarantined or in conflict coaches nobody: say so on
    /// that record's line, where the admin looks to fix it.
    fn note_managers_who_coach_nobody(&mut self, view: &TeamView<'a>) {
        for change in &mut self.changes {
            if matches!(change.kind(), ChangeKind::Quarantine | ChangeKind::Conflict)
                && let Some(teams) = change
                    .employee_id
                    .as_ref()
                    .and_then(|id| view.uncoached.get(id))
            {
                let teams: Vec<&str> = teams.iter().map(TeamKey::as_str).collect();
                change.reason.push_str(&format!(
                    "; manages people in team {}, but is no coach of it until this is resolved",
                    teams.join(", ")
                ));
            }
        }
    }

    /// The coach assignments of person `i`: the teams of the people they manage.
    fn coach_links(&mut self, view: &TeamView<'a>, i: usize, s: &Synced<'a>) {
        let id = s.existing.map(|a| a.id);
        for key in &view.coach_of[i] {
            let team = view.team_ref(key);
            if !view.has(&view.all_coaches, id, &team) {
                let reason = match &view.team_of[i] {
                    Some(own) if own == key => {
                        format!("manages people in team `{key}` and works in it: coach, not member")
                    }
                    _ => format!("manages people in team `{key}`"),
                };
                self.push(
                    s.record,
                    Some("coach"),
                    None,
                    Some(key.to_string()),
                    reason,
                    Action::CoachAssign {
                        account: s.account.clone(),
                        team,
                    },
                );
            }
        }
        let Some(id) = id else {
            return;
        };
        for team in view.our_coaches.get(&id).into_iter().flatten() {
            let key = view.key_of(team);
            let wanted = view.coach_of[i]
                .iter()
                .any(|k| k.as_str() == key && view.teams.get(k).is_some_and(|t| t.id == *team));
            if !wanted {
                self.push(
                    s.record,
                    Some("coach"),
                    Some(key.clone()),
                    None,
                    format!("no longer manages anyone in team `{key}`"),
                    Action::CoachUnassign {
                        account: id,
                        team: *team,
                    },
                );
            }
        }
    }

    /// The team membership of person `i`: their own team, unless they coach it.
    fn member_links(&mut self, view: &TeamView<'a>, i: usize, s: &Synced<'a>, coach_allowed: bool) {
        let record = s.record;
        let id = s.existing.map(|a| a.id);
        // The coach assignment wins, also one made by hand. After this plan the person
        // coaches a team when HR makes them its coach, when a coach link made by hand says
        // so, or when the connector's own link stays because HR may no longer change coaches.
        let coaches_after = |k: &TeamKey| {
            let team = view.team_ref(k);
            let by_hand =
                view.has(&view.all_coaches, id, &team) && !view.has(&view.our_coaches, id, &team);
            let kept = !coach_allowed && view.has(&view.our_coaches, id, &team);
            (coach_allowed && view.coach_of[i].contains(k)) || by_hand || kept
        };
        let wanted_member = view.team_of[i].clone().filter(|k| !coaches_after(k));
        if let Some(key) = &wanted_member {
            let team = view.team_ref(key);
            if !view.has(&view.all_members, id, &team) {
                let mut reason = format!("in department `{key}` in HR");
                if let Some(manager) = &record.manager_id
                    && !view.index.contains_key(manager)
                {
                    reason.push_str(&format!(
                        "; manager `{manager}` is not synced by this connector, so is no coach of it"
                    ));
                }
                self.push(
                    record,
                    Some("team"),
                    None,
                    Some(key.to_string()),
                    reason,
                    Action::TeamJoin {
                        account: s.account.clone(),
                        team,
                    },
                );
            }
        }
        let Some(id) = id else {
            return;
        };
        for team in view.our_members.get(&id).into_iter().flatten() {
            let keep = wanted_member
                .as_ref()
                .is_some_and(|k| view.teams.get(k).is_some_and(|t| t.id == *team));
            if keep {
                continue;
            }
            let key = view.key_of(team);
            let reason = if view.team_of[i].as_ref().is_some_and(|k| k.as_str() == key) {
                format!("coaches team `{key}`, so is no longer a member of it")
            } else {
                format!("no longer in department `{key}` in HR")
            };
            self.push(
                record,
                Some("team"),
                Some(key),
                None,
                reason,
                Action::TeamLeave {
                    account: id,
                    team: *team,
                },
            );
        }
    }

    pub(super) fn roles(&mut self, synced: &[Synced<'a>]) {
        let connector = Some(&self.policy.connector);
        let mut all: HashMap<AccountId, BTreeSet<&'a str>> = HashMap::new();
        let mut ours: HashMap<AccountId, BTreeSet<&'a str>> = HashMap::new();
        for g in &self.directory.grants {
            all.entry(g.account_id).or_default().insert(&g.role);
            if g.connector.as_ref() == connector {
                ours.entry(g.account_id).or_default().insert(&g.role);
            }
        }
        for s in synced {
            let record = s.record;
            let wanted: BTreeSet<&str> = self
                .policy
                .roles
                .iter()
                .filter(|r| r.matches(record))
                .map(|r| r.role.as_str())
                .collect();
            let id = s.existing.map(|a| a.id);
            let held = id.and_then(|id| all.get(&id));
            for role in &wanted {
                if !held.is_some_and(|h| h.contains(role)) {
                    self.push(
                        record,
                        Some("role"),
                        None,
                        Some(role.to_string()),
                        format!("role rule `{role}` matches the HR fields"),
                        Action::RoleGrant {
                            account: s.account.clone(),
                            role: role.to_string(),
                        },
                    );
                }
            }
            if let Some(id) = id {
                for role in ours.get(&id).into_iter().flatten() {
                    if !wanted.contains(role) {
                        self.push(
                            record,
                            Some("role"),
                            Some(role.to_string()),
                            None,
                            format!("role rule `{role}` no longer matches the HR fields"),
                            Action::RoleRevoke {
                                account: id,
                                role: role.to_string(),
                            },
                        );
                    }
                }
            }
        }
    }
}

/// Step 6's view of the teams: the connector's teams by key, the name HR gives each, each
/// synced person's team and the teams they coach, and the team links that exist.
struct TeamView<'a> {
    teams: HashMap<&'a TeamKey, &'a Team>,
    names: BTreeMap<TeamKey, String>,
    /// The teams of `names` that do not exist yet, each made once and shared by its changes.
    new_teams: HashMap<TeamKey, Arc<NewTeam>>,
    /// By the index of the person in `synced`.
    team_of: Vec<Option<TeamKey>>,
    /// The index in `synced` of each synced person's employee id.
    index: HashMap<&'a EmployeeId, usize>,
    /// By the index of the person in `synced`.
    coach_of: Vec<BTreeSet<TeamKey>>,
    /// Managers who are not synced, with the teams they would coach.
    uncoached: BTreeMap<EmployeeId, BTreeSet<TeamKey>>,
    all_members: HashMap<AccountId, BTreeSet<TeamId>>,
    our_members: HashMap<AccountId, BTreeSet<TeamId>>,
    all_coaches: HashMap<AccountId, BTreeSet<TeamId>>,
    our_coaches: HashMap<AccountId, BTreeSet<TeamId>>,
    keys_by_id: HashMap<TeamId, &'a TeamKey>,
}

impl TeamView<'_> {
    /// The team a key names: an existing one of the connector, or one this plan makes.
    fn team_ref(&self, key: &TeamKey) -> TeamRef {
        match self.teams.get(key) {
            Some(t) => TeamRef::Existing(t.id),
            None => TeamRef::New(self.new_teams.get(key).cloned().unwrap_or_else(|| {
                Arc::new(NewTeam {
                    key: key.clone(),
                    name: key.to_string(),
                })
            })),
        }
    }

    /// A team's key as text, or its id where the team is unknown.
    fn key_of(&self, id: &TeamId) -> String {
        self.keys_by_id
            .get(id)
            .map(|k| k.to_string())
            .unwrap_or_else(|| id.0.to_string())
    }

    /// Whether the account already has the link to the team in `links`.
    fn has(
        &self,
        links: &HashMap<AccountId, BTreeSet<TeamId>>,
        account: Option<AccountId>,
        team: &TeamRef,
    ) -> bool {
        match (account, team) {
            (Some(id), TeamRef::Existing(t)) => links.get(&id).is_some_and(|s| s.contains(t)),
            _ => false,
        }
    }
}
