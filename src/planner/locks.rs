//! Which fields an admin may edit by hand, and why not ("Local administration"): a field that
//! a connector's HR data owns is locked (the next sync would overwrite the edit), one the
//! person owns since activating is theirs, and anything no connector manages is the admin's.
//!
//! Account fields (email and names) are shared by every organisation of the person and kept
//! by one connector, the account's profile owner; membership fields (job title, location,
//! employment type) by the connector that manages that membership. Pure, like the planner.

use std::collections::BTreeMap;

use crate::domain::ConnectorId;

use super::{Field, Ownership};

/// Each connector's owner of each field, as its policy says (`hris` where it says nothing).
pub type FieldOwners = BTreeMap<ConnectorId, BTreeMap<Field, Ownership>>;

/// Whether an admin may edit a field by hand.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Lock {
    /// The admin may edit it.
    Open,
    /// HR owns it through this connector: an edit would be overwritten at its next sync.
    Hris(ConnectorId),
    /// The person owns it since they activated the account (`user_after_activation`); only
    /// they change it, through the product.
    Person,
}

impl Lock {
    /// Why the field cannot be edited, for an error or a page; `None` when it can.
    pub fn reason(&self, field: Field) -> Option<String> {
        match self {
            Lock::Open => None,
            Lock::Hris(connector) => Some(format!(
                "`{}` is kept by the HR system through connector `{connector}`; change it there",
                field.as_str()
            )),
            Lock::Person => Some(format!(
                "`{}` belongs to the person since they activated the account; only they change it",
                field.as_str()
            )),
        }
    }
}

/// The fields an admin can edit by hand, in the order pages show them. Team and coach
/// assignments are team links, changed as such.
pub const EDITABLE: [Field; 7] = [
    Field::Email,
    Field::FirstName,
    Field::LastName,
    Field::DisplayName,
    Field::JobTitle,
    Field::Location,
    Field::EmploymentType,
];

/// Whether `field` is kept on the account (shared by every organisation) rather than on the
/// membership.
pub fn is_account_field(field: Field) -> bool {
    matches!(
        field,
        Field::Email | Field::FirstName | Field::LastName | Field::DisplayName
    )
}

/// The lock on `field` of a person. `keeper` is the connector that writes the field: for an
/// account field the account's profile owner, for a membership field the membership's
/// connector; `None` when no connector does. `activated` is whether the person activated the
/// account.
pub fn lock(
    field: Field,
    keeper: Option<&ConnectorId>,
    owners: &FieldOwners,
    activated: bool,
) -> Lock {
    let Some(connector) = keeper else {
        return Lock::Open;
    };
    let owner = |f: Field| {
        owners
            .get(connector)
            .and_then(|o| o.get(&f))
            .copied()
            .unwrap_or(Ownership::Hris)
    };
    // A display name HR does not give is made from the names and has their owner; HR may
    // write it when either reading lets it.
    let owned = match field {
        Field::DisplayName => {
            let derived = owner(Field::FirstName).stricter(owner(Field::LastName));
            if owner(Field::DisplayName).hr_may_update(activated) {
                owner(Field::DisplayName)
            } else {
                derived
            }
        }
        other => owner(other),
    };
    match owned {
        Ownership::Local => Lock::Open,
        Ownership::Hris => Lock::Hris(connector.clone()),
        Ownership::UserAfterActivation if activated => Lock::Person,
        Ownership::UserAfterActivation => Lock::Hris(connector.clone()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn owners(pairs: &[(Field, Ownership)]) -> FieldOwners {
        let mut owners = FieldOwners::new();
        owners.insert(cid("hr"), pairs.iter().copied().collect());
        owners
    }

    fn cid(text: &str) -> ConnectorId {
        ConnectorId::parse(text).unwrap()
    }

    #[test]
    fn a_field_no_connector_keeps_is_open_to_the_admin() {
        let lock = lock(Field::JobTitle, None, &FieldOwners::new(), true);
        assert_eq!(lock, Lock::Open);
    }

    #[test]
    fn an_hris_field_is_locked_naming_its_connector() {
        let lock = lock(Field::LastName, Some(&cid("hr")), &owners(&[]), false);
        assert_eq!(lock, Lock::Hris(cid("hr")));
        assert!(lock.reason(Field::LastName).unwrap().contains("`hr`"));
    }

    #[test]
    fn a_local_field_is_open_even_when_a_connector_manages_the_person() {
        let owners = owners(&[(Field::Location, Ownership::Local)]);
        assert_eq!(
            lock(Field::Location, Some(&cid("hr")), &owners, true),
            Lock::Open
        );
    }

    #[test]
    fn a_user_after_activation_field_is_hrs_before_and_the_persons_after_activation() {
        let owners = owners(&[(Field::FirstName, Ownership::UserAfterActivation)]);
        assert_eq!(
            lock(Field::FirstName, Some(&cid("hr")), &owners, false),
            Lock::Hris(cid("hr"))
        );
        assert_eq!(
            lock(Field::FirstName, Some(&cid("hr")), &owners, true),
            Lock::Person
        );
    }

    #[test]
    fn a_display_name_made_from_names_the_person_owns_is_theirs_after_activation() {
        let owners = owners(&[
            (Field::FirstName, Ownership::UserAfterActivation),
            (Field::LastName, Ownership::UserAfterActivation),
            (Field::DisplayName, Ownership::UserAfterActivation),
        ]);
        assert_eq!(
            lock(Field::DisplayName, Some(&cid("hr")), &owners, true),
            Lock::Person
        );
    }
}
