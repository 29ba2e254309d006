//! Who may do what: roles granted per namespace, and the checks every control-plane call makes.
//!
//! Roles are ordered: `viewer` < `builder` < `operator` < `admin`; a higher role can do all that
//! a lower one can. A binding in namespace `*` holds in every namespace (platform-wide).

use std::fmt;
use std::str::FromStr;

/// The namespace of platform-wide bindings.
pub const ALL_NAMESPACES: &str = "*";

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Role {
    /// Reads apps, revisions and logs of the namespace.
    Viewer,
    /// Deploys new apps into the namespace and changes the apps it owns.
    Builder,
    /// Changes any app of the namespace (deploy, roll back, delete).
    Operator,
    /// Everything in the namespace, including granting roles; on `*`, the whole platform.
    Admin,
}

impl Role {
    pub const ALL: [Role; 4] = [Role::Viewer, Role::Builder, Role::Operator, Role::Admin];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Builder => "builder",
            Role::Operator => "operator",
            Role::Admin => "admin",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Role {
    type Err = String;
    fn from_str(text: &str) -> Result<Role, String> {
        Role::ALL
            .into_iter()
            .find(|role| role.as_str() == text)
            .ok_or_else(|| format!("{text:?} is not a role; use one of viewer, builder, operator, admin"))
    }
}

/// A signed-in caller: their name, groups and the roles bound to them or their groups.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Principal {
    pub subject: String,
    pub groups: Vec<String>,
    /// (namespace or `*`, role).
    pub roles: Vec<(String, Role)>,
}

impl Principal {
    /// Whether the caller holds `role` (or a higher one) in `namespace`.
    pub fn has_role(&self, namespace: &str, role: Role) -> bool {
        self.roles.iter().any(|(bound, held)| (bound == namespace || bound == ALL_NAMESPACES) && *held >= role)
    }

    /// A platform admin: `admin` on `*`.
    pub fn is_platform_admin(&self) -> bool {
        self.has_role(ALL_NAMESPACES, Role::Admin)
    }

    /// Whether an app owner (`user:<name>` or `group:<name>`, from the manifest) is this caller.
    pub fn is_owner(&self, owner: &str) -> bool {
        match owner.split_once(':') {
            Some(("user", name)) => name == self.subject,
            Some(("group", group)) => self.groups.iter().any(|mine| mine == group),
            _ => false,
        }
    }

    /// The subjects role bindings can name for this caller: `user:<name>` and each `group:<g>`.
    pub fn binding_subjects(subject: &str, groups: &[String]) -> Vec<String> {
        std::iter::once(format!("user:{subject}")).chain(groups.iter().map(|group| format!("group:{group}"))).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn principal(roles: &[(&str, Role)]) -> Principal {
        Principal {
            subject: "ana".into(),
            groups: vec!["growth".into()],
            roles: roles.iter().map(|(ns, role)| (ns.to_string(), *role)).collect(),
        }
    }

    #[test]
    fn roles_are_ordered_and_scoped() {
        let builder = principal(&[("growth", Role::Builder)]);
        assert!(builder.has_role("growth", Role::Viewer));
        assert!(builder.has_role("growth", Role::Builder));
        assert!(!builder.has_role("growth", Role::Operator));
        assert!(!builder.has_role("finance", Role::Viewer));
        assert!(!builder.is_platform_admin());

        let operator_everywhere = principal(&[("*", Role::Operator)]);
        assert!(operator_everywhere.has_role("finance", Role::Operator));
        assert!(!operator_everywhere.has_role("finance", Role::Admin));

        let admin = principal(&[("*", Role::Admin)]);
        assert!(admin.is_platform_admin());
        assert!(admin.has_role("anything", Role::Admin));
    }

    #[test]
    fn ownership() {
        let ana = principal(&[]);
        assert!(ana.is_owner("user:ana"));
        assert!(ana.is_owner("group:growth"));
        assert!(!ana.is_owner("user:bob"));
        assert!(!ana.is_owner("group:finance"));
        assert!(!ana.is_owner("ana"));
        assert_eq!(Principal::binding_subjects("ana", &["growth".into()]), ["user:ana", "group:growth"]);
        assert_eq!("builder".parse::<Role>(), Ok(Role::Builder));
        assert!("root".parse::<Role>().is_err());
    }
}
