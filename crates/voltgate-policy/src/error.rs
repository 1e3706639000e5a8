//! Errors from changing an engine's estate (scopes, principals, roles, assignments, modules).

/// Why a change to the estate was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    #[error("unknown scope `{0}`")]
    UnknownScope(String),
    #[error("unknown scope kind `{0}`")]
    UnknownKind(String),
    #[error("unknown principal `{0}`")]
    UnknownPrincipal(String),
    #[error("unknown role `{0}`")]
    UnknownRole(String),
    #[error("unknown module `{0}`")]
    UnknownModule(String),
    #[error("unknown permission `{0}`")]
    UnknownPermission(String),
    #[error("scope `{0}` already exists")]
    DuplicateScope(String),
    /// The id names a principal, or named a deleted one (the estate answers both alike, so
    /// the answer tells nothing about whose it is or was).
    #[error("principal id `{0}` is taken; choose another id")]
    DuplicatePrincipal(String),
    #[error("role `{0}` already exists")]
    DuplicateRole(String),
    /// A card text (and type) already claimed in the namespace; names no holder.
    #[error("id token `{0}` is already registered")]
    CardTaken(String),
    #[error("`{id}` is not a valid {what} id")]
    InvalidId { what: &'static str, id: String },
    #[error("there is only one root scope; scopes of kind `root` cannot be added")]
    RootKind,
    #[error("a scope of kind `{kind}` cannot sit under `{parent}` (kind `{parent_kind}`)")]
    ParentKindNotAllowed {
        kind: String,
        parent: String,
        parent_kind: String,
    },
    #[error("role `{role}` cannot be assigned on `{scope}` (kind `{kind}`)")]
    RoleNotAssignable {
        role: String,
        scope: String,
        kind: String,
    },
    #[error("role `{role}` can only be assigned on station `{scope}` while module `{module}` is on there")]
    ModuleRequired {
        role: String,
        scope: String,
        module: String,
    },
    #[error("preset `{preset}` does not allow custom roles")]
    CustomRolesDisabled { preset: String },
    #[error("custom role `{role}` cannot contain admin permission `{permission}`")]
    AdminPermissionInCustomRole { role: String, permission: String },
    #[error("custom role `{role}` cannot contain admin role `{admin_role}`; admin roles are granted on their own")]
    AdminRoleInCustomRole { role: String, admin_role: String },
    #[error("custom role `{role}` cannot be named `{name}`, which is the name of an admin role")]
    AdminRoleName { role: String, name: String },
    #[error("`{0}` is reserved for the gateway's own audit entries and cannot name a principal")]
    ReservedId(String),
    #[error("custom role `{0}` needs at least one permission")]
    EmptyCustomRole(String),
    #[error("the label of custom role `{role}` must be 1 to {limit} characters")]
    InvalidLabel { role: String, limit: usize },
    #[error("module `{module}` cannot be switched on `{scope}` (kind `{kind}`)")]
    ModuleNotSwitchable {
        module: String,
        scope: String,
        kind: String,
    },
    #[error("scope `{parent}` is at the depth limit of {limit}; no scope can be added under it")]
    TooDeep { parent: String, limit: u32 },
    #[error("the subtree of `{top}` holds its limit of {limit} scopes")]
    SubtreeFull { top: String, limit: u32 },
    #[error("too many {what} (limit {limit})")]
    TooMany { what: &'static str, limit: usize },
}
