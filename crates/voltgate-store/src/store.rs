//! The [`Store`] trait: everything Voltgate must keep across a restart, as one object-safe
//! async interface so the gateway never depends on a particular database.

use crate::error::StoreError;
use crate::records::{
    ApiTokenRecord, AssignmentRecord, AuditFilter, AuditRecord, BootRecord, ChargerBehaviour,
    ChargerRecord, IdTokenRecord, LocalListRecord, NewTransaction, PrincipalRecord, RoleRecord,
    ScopeRecord, StoredAuditRecord, TransactionFilter, TransactionRecord,
};

/// Durable state of a Voltgate gateway.
///
/// Every write is committed when its future resolves with `Ok`; a crash right after cannot lose
/// it. Writes that name a principal (`add_api_token`, `put_id_token`, `add_assignment`) fail with
/// [`StoreError::NotFound`] if that principal has not been stored.
#[async_trait::async_trait]
pub trait Store: Send + Sync + 'static {
    // --- role-engine state, replayed into the engine at start in this order ---

    /// All scopes, every parent before its children (then in insertion order).
    async fn scopes(&self) -> Result<Vec<ScopeRecord>, StoreError>;
    /// One scope by id; `None` when the store does not hold it.
    async fn scope(&self, id: &str) -> Result<Option<ScopeRecord>, StoreError>;
    /// Inserts or replaces a scope by id.
    async fn put_scope(&self, s: &ScopeRecord) -> Result<(), StoreError>;
    /// Switches a module on or off at a scope (replacing an earlier setting).
    async fn set_module(&self, scope: &str, module: &str, on: bool) -> Result<(), StoreError>;
    /// Every explicit module setting as `(scope, module, on)`, in the order first set.
    async fn modules(&self) -> Result<Vec<(String, String, bool)>, StoreError>;
    /// Inserts or replaces a principal by id.
    async fn put_principal(&self, p: &PrincipalRecord) -> Result<(), StoreError>;
    /// All principals in insertion order.
    async fn principals(&self) -> Result<Vec<PrincipalRecord>, StoreError>;
    /// Deletes a principal with its API tokens, id tokens and assignments. `false` if unknown.
    async fn delete_principal(&self, id: &str) -> Result<bool, StoreError>;
    /// Whether `id` belonged to a deleted principal ([`Store::delete_principal`] retires it):
    /// such an id is never given out again, so nobody inherits the old principal's audit
    /// history.
    async fn principal_id_retired(&self, id: &str) -> Result<bool, StoreError>;
    /// `false` if the principal is unknown.
    async fn set_principal_blocked(&self, id: &str, blocked: bool) -> Result<bool, StoreError>;
    /// Inserts or replaces a custom role by id.
    async fn put_role(&self, r: &RoleRecord) -> Result<(), StoreError>;
    /// All custom roles in insertion order.
    async fn roles(&self) -> Result<Vec<RoleRecord>, StoreError>;
    /// `false` if the assignment already existed.
    async fn add_assignment(&self, a: &AssignmentRecord) -> Result<bool, StoreError>;
    /// `false` if there was no such assignment.
    async fn remove_assignment(&self, a: &AssignmentRecord) -> Result<bool, StoreError>;
    /// All assignments in insertion order.
    async fn assignments(&self) -> Result<Vec<AssignmentRecord>, StoreError>;

    // --- chargers ---

    /// Inserts or replaces a charger by id. The pending mark is written only when the charger
    /// is inserted; a replacement keeps the stored one.
    async fn put_charger(&self, c: &ChargerRecord) -> Result<(), StoreError>;
    /// Adds a new charger and its station scope in one write: `false`, with nothing written,
    /// when a charger of that id exists already. What registration takes, in one round trip
    /// (the station scope replaces a scope row of that id, as [`Store::put_scope`] does).
    async fn add_charger(
        &self,
        c: &ChargerRecord,
        station: &ScopeRecord,
    ) -> Result<bool, StoreError>;
    async fn charger(&self, id: &str) -> Result<Option<ChargerRecord>, StoreError>;
    /// The stored chargers among `ids`, in no particular order; an id the store does not hold
    /// is left out. A few queries however many ids (a follower adopting a registration storm).
    async fn chargers_named(&self, ids: &[String]) -> Result<Vec<ChargerRecord>, StoreError>;
    /// All chargers ordered by id.
    async fn chargers(&self) -> Result<Vec<ChargerRecord>, StoreError>;
    /// Whether the charger awaits approval (auto-registered, not yet trusted); `false` for an
    /// unknown id.
    async fn charger_pending(&self, id: &str) -> Result<bool, StoreError>;
    /// Marks the charger pending or approved; `false` if there is no such charger. Other
    /// writes of the charger ([`Store::put_charger`]) keep the mark.
    async fn set_charger_pending(&self, id: &str, pending: bool) -> Result<bool, StoreError>;
    /// Sets (`strict`, `lenient`) or clears (`None`) the charger's own schema tolerance;
    /// `false` if there is no such charger. Other writes of the charger keep it.
    async fn set_charger_schema_tolerance(
        &self,
        id: &str,
        tolerance: Option<&str>,
    ) -> Result<bool, StoreError>;
    /// Every charger with its own schema tolerance, as `(id, tolerance)` ordered by id.
    async fn charger_schema_tolerances(&self) -> Result<Vec<(String, String)>, StoreError>;
    /// Sets the charger's behaviour settings (all of them, as given); `false` if there is no
    /// such charger. Other writes of the charger keep them.
    async fn set_charger_behaviour(&self, b: &ChargerBehaviour) -> Result<bool, StoreError>;
    /// Every charger whose behaviour settings are not the defaults, ordered by id.
    async fn charger_behaviours(&self) -> Result<Vec<ChargerBehaviour>, StoreError>;
    /// Appends a BootNotification to the charger's boot history.
    async fn record_boot(&self, id: &str, boot: &BootRecord) -> Result<(), StoreError>;

    // --- operator API tokens (only hashes are stored) ---

    /// [`StoreError::Conflict`] if the token id or hash is already stored.
    async fn add_api_token(&self, t: &ApiTokenRecord) -> Result<(), StoreError>;
    /// The token with this hash, expired or not: the caller judges `expires_at`.
    async fn principal_for_token_hash(
        &self,
        hash: &str,
    ) -> Result<Option<ApiTokenRecord>, StoreError>;
    /// The principal's tokens in creation order.
    async fn api_tokens_of(&self, principal: &str) -> Result<Vec<ApiTokenRecord>, StoreError>;
    /// `false` if there was no such token.
    async fn revoke_api_token(&self, id: &str) -> Result<bool, StoreError>;

    // --- driver id tokens (RFID / idTag) ---

    /// Inserts or replaces an id token, keyed by its text and principal: one text may be
    /// stored for several principals (of different tenants; which may claim what is the role
    /// engine's rule, not the store's).
    async fn put_id_token(&self, t: &IdTokenRecord) -> Result<(), StoreError>;
    /// Every id token stored under the text `exact` or `normal` (the presented text and its
    /// normal form), ordered by text and principal, in one read whatever it finds.
    async fn id_tokens_named(
        &self,
        exact: &str,
        normal: &str,
    ) -> Result<Vec<IdTokenRecord>, StoreError>;
    /// All id tokens ordered by token, then principal.
    async fn id_tokens(&self) -> Result<Vec<IdTokenRecord>, StoreError>;
    /// The principal's id tokens ordered by token.
    async fn id_tokens_of(&self, principal: &str) -> Result<Vec<IdTokenRecord>, StoreError>;
    /// Deletes `principal`'s id token `id_token`; `false` if there was no such id token.
    async fn delete_id_token(&self, principal: &str, id_token: &str) -> Result<bool, StoreError>;

    // --- local authorisation lists (what each charger was last sent) ---

    /// `None` when nothing was ever installed on this charger.
    async fn local_list(&self, charger: &str) -> Result<Option<LocalListRecord>, StoreError>;
    /// Inserts or replaces the charger's list.
    async fn put_local_list(&self, list: &LocalListRecord) -> Result<(), StoreError>;

    // --- transactions ---

    /// Starts a session, idempotent by `(charger, key)`: a retry (also a concurrent one) returns
    /// the row stored first, unchanged, and never creates a second one.
    async fn start_transaction(&self, t: &NewTransaction) -> Result<TransactionRecord, StoreError>;
    /// Stores one meter-values message. A second message with the same `Some(seq)` for the
    /// same transaction is ignored, and so is, without a sequence number (OCPP 1.6), a second
    /// identical `values` at the same `at`. [`StoreError::NotFound`] if the charger has no such
    /// transaction.
    async fn add_meter_values(
        &self,
        charger: &str,
        transaction_id: i64,
        seq: Option<i64>,
        values: &serde_json::Value,
        at: &str,
    ) -> Result<(), StoreError>;
    /// Stops a session. The first stop wins: stopping again returns the row as first stopped.
    /// `None` if the charger has no such transaction.
    async fn stop_transaction(
        &self,
        charger: &str,
        transaction_id: i64,
        meter_stop: Option<f64>,
        stopped_at: &str,
        reason: Option<&str>,
    ) -> Result<Option<TransactionRecord>, StoreError>;
    async fn transaction_by_key(
        &self,
        charger: &str,
        key: &str,
    ) -> Result<Option<TransactionRecord>, StoreError>;
    /// Transactions matching the filter, newest first.
    async fn transactions(
        &self,
        filter: &TransactionFilter,
    ) -> Result<Vec<TransactionRecord>, StoreError>;

    // --- audit log (append-only) ---

    /// Appends a record and returns its id; ids increase with every append.
    async fn append_audit(&self, r: &AuditRecord) -> Result<i64, StoreError>;
    /// Fills in (or replaces) the outcome of a record, the only part that may change later.
    /// [`StoreError::NotFound`] if there is no such record.
    async fn set_audit_outcome(&self, id: i64, outcome: &str) -> Result<(), StoreError>;
    /// Records matching the filter, newest first.
    async fn audit(&self, filter: &AuditFilter) -> Result<Vec<StoredAuditRecord>, StoreError>;
    /// Appends a security event reported by or about a charger.
    async fn security_event(
        &self,
        charger: &str,
        kind: &str,
        at: &str,
        info: &serde_json::Value,
    ) -> Result<(), StoreError>;

    // --- lifetime ---

    /// Answers once the database answers a trivial query: what readiness asks while the
    /// database may be unreachable.
    async fn ping(&self) -> Result<(), StoreError>;

    /// Commits every acknowledged write and closes the store; later calls fail with
    /// [`StoreError::Closed`]. Backends without anything to close keep the default.
    async fn close(&self) {}
}

/// Lets types holding an `Arc<dyn Store>` derive `Debug`; a store has no state worth printing.
impl std::fmt::Debug for dyn Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("dyn Store")
    }
}
