//! Every statement the PostgreSQL backend runs, one [`Store`] method at a time. Each write is
//! a single statement, atomic on its own (deleting a principal and retiring its id is one
//! database transaction), so the same contract holds as on SQLite with concurrent writers on
//! several connections, and on several gateway processes.

use sqlx::{Postgres, QueryBuilder};

use super::{rows, PostgresStore};
use crate::error::{refused_write, StoreError};
use crate::records::{
    ApiTokenRecord, AssignmentRecord, AuditFilter, AuditRecord, BootRecord, ChargerBehaviour,
    ChargerRecord, IdTokenRecord, LocalListRecord, NewTransaction, PrincipalRecord, RoleRecord,
    ScopeRecord, StoredAuditRecord, TransactionFilter, TransactionRecord,
};
use crate::replay::parents_first;
use crate::store::Store;

macro_rules! transaction_columns {
    () => {
        "id, charger, key, connector, id_token, principal, meter_start, meter_stop, started_at, \
         stopped_at, stop_reason"
    };
}

macro_rules! audit_columns {
    () => {
        "id, at, principal, action, resource, allowed, reason, outcome, request_id"
    };
}

macro_rules! id_token_columns {
    () => {
        "id_token, principal, blocked, expires_at, group_id, token_type"
    };
}

/// `LIMIT NULL` is PostgreSQL's "no limit".
fn sql_limit(limit: u32) -> Option<i64> {
    (limit != 0).then(|| i64::from(limit))
}

#[async_trait::async_trait]
impl Store for PostgresStore {
    async fn scopes(&self) -> Result<Vec<ScopeRecord>, StoreError> {
        let found = sqlx::query("SELECT id, kind, parent, name FROM scopes ORDER BY seq")
            .fetch_all(self.pool()?)
            .await?;
        Ok(parents_first(rows::all(&found, rows::scope)?))
    }

    async fn scope(&self, id: &str) -> Result<Option<ScopeRecord>, StoreError> {
        let found = sqlx::query("SELECT id, kind, parent, name FROM scopes WHERE id = $1")
            .bind(id)
            .fetch_optional(self.pool()?)
            .await?;
        found.as_ref().map(rows::scope).transpose()
    }

    async fn put_scope(&self, s: &ScopeRecord) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO scopes (id, kind, parent, name) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (id) DO UPDATE SET \
             kind = excluded.kind, parent = excluded.parent, name = excluded.name",
        )
        .bind(&s.id)
        .bind(&s.kind)
        .bind(&s.parent)
        .bind(&s.name)
        .execute(self.pool()?)
        .await?;
        Ok(())
    }

    async fn set_module(&self, scope: &str, module: &str, on: bool) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO scope_modules (scope, module, enabled) VALUES ($1, $2, $3) \
             ON CONFLICT (scope, module) DO UPDATE SET enabled = excluded.enabled",
        )
        .bind(scope)
        .bind(module)
        .bind(on)
        .execute(self.pool()?)
        .await?;
        Ok(())
    }

    async fn modules(&self) -> Result<Vec<(String, String, bool)>, StoreError> {
        let found = sqlx::query("SELECT scope, module, enabled FROM scope_modules ORDER BY seq")
            .fetch_all(self.pool()?)
            .await?;
        rows::all(&found, rows::module)
    }

    async fn put_principal(&self, p: &PrincipalRecord) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO principals (id, kind, home_scope, name, blocked) \
             VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (id) DO UPDATE SET kind = excluded.kind, \
             home_scope = excluded.home_scope, name = excluded.name, \
             blocked = excluded.blocked",
        )
        .bind(&p.id)
        .bind(&p.kind)
        .bind(&p.home_scope)
        .bind(&p.name)
        .bind(p.blocked)
        .execute(self.pool()?)
        .await?;
        Ok(())
    }

    async fn principals(&self) -> Result<Vec<PrincipalRecord>, StoreError> {
        let found =
            sqlx::query("SELECT id, kind, home_scope, name, blocked FROM principals ORDER BY seq")
                .fetch_all(self.pool()?)
                .await?;
        rows::all(&found, rows::principal)
    }

    async fn delete_principal(&self, id: &str) -> Result<bool, StoreError> {
        // Tokens, id tokens and assignments go with it through ON DELETE CASCADE; the id is
        // retired in the same transaction.
        let mut tx = self.pool()?.begin().await?;
        let done = sqlx::query("DELETE FROM principals WHERE id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        if done.rows_affected() == 0 {
            return Ok(false);
        }
        sqlx::query("INSERT INTO retired_principal_ids (id) VALUES ($1) ON CONFLICT DO NOTHING")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(true)
    }

    async fn principal_id_retired(&self, id: &str) -> Result<bool, StoreError> {
        let found = sqlx::query("SELECT 1 FROM retired_principal_ids WHERE id = $1")
            .bind(id)
            .fetch_optional(self.pool()?)
            .await?;
        Ok(found.is_some())
    }

    async fn set_principal_blocked(&self, id: &str, blocked: bool) -> Result<bool, StoreError> {
        let done = sqlx::query("UPDATE principals SET blocked = $1 WHERE id = $2")
            .bind(blocked)
            .bind(id)
            .execute(self.pool()?)
            .await?;
        Ok(done.rows_affected() > 0)
    }

    async fn put_role(&self, r: &RoleRecord) -> Result<(), StoreError> {
        let permissions = serde_json::Value::from(r.permissions.clone()).to_string();
        sqlx::query(
            "INSERT INTO roles (id, label, permissions) VALUES ($1, $2, $3::jsonb) \
             ON CONFLICT (id) DO UPDATE SET \
             label = excluded.label, permissions = excluded.permissions",
        )
        .bind(&r.id)
        .bind(&r.label)
        .bind(permissions)
        .execute(self.pool()?)
        .await?;
        Ok(())
    }

    async fn roles(&self) -> Result<Vec<RoleRecord>, StoreError> {
        let found = sqlx::query(
            "SELECT id, label, permissions::text AS permissions FROM roles ORDER BY seq",
        )
        .fetch_all(self.pool()?)
        .await?;
        rows::all(&found, rows::role)
    }

    async fn add_assignment(&self, a: &AssignmentRecord) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "INSERT INTO assignments (principal, role, scope) VALUES ($1, $2, $3) \
             ON CONFLICT DO NOTHING",
        )
        .bind(&a.principal)
        .bind(&a.role)
        .bind(&a.scope)
        .execute(self.pool()?)
        .await
        .map_err(|err| {
            refused_write(err, &a.principal, || {
                "the assignment already exists".to_owned()
            })
        })?;
        Ok(done.rows_affected() > 0)
    }

    async fn remove_assignment(&self, a: &AssignmentRecord) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "DELETE FROM assignments WHERE principal = $1 AND role = $2 AND scope = $3",
        )
        .bind(&a.principal)
        .bind(&a.role)
        .bind(&a.scope)
        .execute(self.pool()?)
        .await?;
        Ok(done.rows_affected() > 0)
    }

    async fn assignments(&self) -> Result<Vec<AssignmentRecord>, StoreError> {
        let found = sqlx::query("SELECT principal, role, scope FROM assignments ORDER BY seq")
            .fetch_all(self.pool()?)
            .await?;
        rows::all(&found, rows::assignment)
    }

    async fn put_charger(&self, c: &ChargerRecord) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO chargers (id, scope, password_hash, security_profile, pending) \
             VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (id) DO UPDATE SET scope = excluded.scope, \
             password_hash = excluded.password_hash, \
             security_profile = excluded.security_profile",
        )
        .bind(&c.id)
        .bind(&c.scope)
        .bind(&c.password_hash)
        .bind(i16::from(c.security_profile))
        .bind(c.pending)
        .execute(self.pool()?)
        .await?;
        Ok(())
    }

    async fn add_charger(
        &self,
        c: &ChargerRecord,
        station: &ScopeRecord,
    ) -> Result<bool, StoreError> {
        // One statement: the scope row is written only when the charger row was.
        let added = sqlx::query(
            "WITH added AS ( \
                 INSERT INTO chargers (id, scope, password_hash, security_profile, pending) \
                 VALUES ($1, $2, $3, $4, $5) ON CONFLICT (id) DO NOTHING RETURNING id) \
             INSERT INTO scopes (id, kind, parent, name) \
             SELECT $6, $7, $8, $9 FROM added \
             ON CONFLICT (id) DO UPDATE SET \
             kind = excluded.kind, parent = excluded.parent, name = excluded.name \
             RETURNING id",
        )
        .bind(&c.id)
        .bind(&c.scope)
        .bind(&c.password_hash)
        .bind(i16::from(c.security_profile))
        .bind(c.pending)
        .bind(&station.id)
        .bind(&station.kind)
        .bind(&station.parent)
        .bind(&station.name)
        .fetch_optional(self.pool()?)
        .await?;
        Ok(added.is_some())
    }

    async fn chargers_named(&self, ids: &[String]) -> Result<Vec<ChargerRecord>, StoreError> {
        let found = sqlx::query(
            "SELECT id, scope, password_hash, security_profile, pending FROM chargers \
             WHERE id = ANY($1)",
        )
        .bind(ids)
        .fetch_all(self.pool()?)
        .await?;
        rows::all(&found, rows::charger)
    }

    async fn charger(&self, id: &str) -> Result<Option<ChargerRecord>, StoreError> {
        let found = sqlx::query(
            "SELECT id, scope, password_hash, security_profile, pending FROM chargers \
             WHERE id = $1",
        )
        .bind(id)
        .fetch_optional(self.pool()?)
        .await?;
        found.as_ref().map(rows::charger).transpose()
    }

    async fn chargers(&self) -> Result<Vec<ChargerRecord>, StoreError> {
        let found = sqlx::query(
            "SELECT id, scope, password_hash, security_profile, pending FROM chargers \
             ORDER BY id",
        )
        .fetch_all(self.pool()?)
        .await?;
        rows::all(&found, rows::charger)
    }

    async fn charger_pending(&self, id: &str) -> Result<bool, StoreError> {
        let pending: Option<bool> =
            sqlx::query_scalar("SELECT pending FROM chargers WHERE id = $1")
                .bind(id)
                .fetch_optional(self.pool()?)
                .await?;
        Ok(pending.unwrap_or(false))
    }

    async fn set_charger_pending(&self, id: &str, pending: bool) -> Result<bool, StoreError> {
        let done = sqlx::query("UPDATE chargers SET pending = $1 WHERE id = $2")
            .bind(pending)
            .bind(id)
            .execute(self.pool()?)
            .await?;
        Ok(done.rows_affected() > 0)
    }

    async fn set_charger_schema_tolerance(
        &self,
        id: &str,
        tolerance: Option<&str>,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query("UPDATE chargers SET schema_tolerance = $1 WHERE id = $2")
            .bind(tolerance)
            .bind(id)
            .execute(self.pool()?)
            .await?;
        Ok(done.rows_affected() > 0)
    }

    async fn charger_schema_tolerances(&self) -> Result<Vec<(String, String)>, StoreError> {
        let found: Vec<(String, String)> = sqlx::query_as(
            "SELECT id, schema_tolerance FROM chargers \
             WHERE schema_tolerance IS NOT NULL ORDER BY id",
        )
        .fetch_all(self.pool()?)
        .await?;
        Ok(found)
    }

    async fn set_charger_behaviour(&self, b: &ChargerBehaviour) -> Result<bool, StoreError> {
        let done =
            sqlx::query("UPDATE chargers SET post_boot_sync = $1, free_vend = $2 WHERE id = $3")
                .bind(b.post_boot_sync.as_deref())
                .bind(b.free_vend)
                .bind(&b.id)
                .execute(self.pool()?)
                .await?;
        Ok(done.rows_affected() > 0)
    }

    async fn charger_behaviours(&self) -> Result<Vec<ChargerBehaviour>, StoreError> {
        let found: Vec<(String, Option<String>, bool)> = sqlx::query_as(
            "SELECT id, post_boot_sync, free_vend FROM chargers \
             WHERE post_boot_sync IS NOT NULL OR free_vend ORDER BY id",
        )
        .fetch_all(self.pool()?)
        .await?;
        Ok(found
            .into_iter()
            .map(|(id, post_boot_sync, free_vend)| ChargerBehaviour {
                id,
                post_boot_sync,
                free_vend,
            })
            .collect())
    }

    async fn record_boot(&self, id: &str, boot: &BootRecord) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO charger_boots \
             (charger, vendor, model, serial, firmware, ocpp_version, at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(id)
        .bind(&boot.vendor)
        .bind(&boot.model)
        .bind(&boot.serial)
        .bind(&boot.firmware)
        .bind(&boot.ocpp_version)
        .bind(&boot.at)
        .execute(self.pool()?)
        .await?;
        Ok(())
    }

    async fn add_api_token(&self, t: &ApiTokenRecord) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO api_tokens (id, principal, hash, created_at, expires_at) \
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(&t.id)
        .bind(&t.principal)
        .bind(&t.hash)
        .bind(&t.created_at)
        .bind(&t.expires_at)
        .execute(self.pool()?)
        .await
        .map_err(|err| {
            refused_write(err, &t.principal, || {
                format!(
                    "API token `{}` or a token with the same hash already exists",
                    t.id
                )
            })
        })?;
        Ok(())
    }

    async fn principal_for_token_hash(
        &self,
        hash: &str,
    ) -> Result<Option<ApiTokenRecord>, StoreError> {
        let found = sqlx::query(
            "SELECT id, principal, hash, created_at, expires_at FROM api_tokens WHERE hash = $1",
        )
        .bind(hash)
        .fetch_optional(self.pool()?)
        .await?;
        found.as_ref().map(rows::api_token).transpose()
    }

    async fn api_tokens_of(&self, principal: &str) -> Result<Vec<ApiTokenRecord>, StoreError> {
        let found = sqlx::query(
            "SELECT id, principal, hash, created_at, expires_at FROM api_tokens \
             WHERE principal = $1 ORDER BY seq",
        )
        .bind(principal)
        .fetch_all(self.pool()?)
        .await?;
        rows::all(&found, rows::api_token)
    }

    async fn revoke_api_token(&self, id: &str) -> Result<bool, StoreError> {
        let done = sqlx::query("DELETE FROM api_tokens WHERE id = $1")
            .bind(id)
            .execute(self.pool()?)
            .await?;
        Ok(done.rows_affected() > 0)
    }

    async fn put_id_token(&self, t: &IdTokenRecord) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO id_tokens (id_token, principal, blocked, expires_at, group_id, \
             token_type) VALUES ($1, $2, $3, $4, $5, $6) \
             ON CONFLICT (id_token, principal) DO UPDATE SET \
             blocked = excluded.blocked, expires_at = excluded.expires_at, \
             group_id = excluded.group_id, token_type = excluded.token_type",
        )
        .bind(&t.id_token)
        .bind(&t.principal)
        .bind(t.blocked)
        .bind(&t.expires_at)
        .bind(&t.group)
        .bind(&t.token_type)
        .execute(self.pool()?)
        .await
        .map_err(|err| {
            refused_write(err, &t.principal, || {
                format!("id token `{}` already exists", t.id_token)
            })
        })?;
        Ok(())
    }

    async fn id_tokens_named(
        &self,
        exact: &str,
        normal: &str,
    ) -> Result<Vec<IdTokenRecord>, StoreError> {
        let found = sqlx::query(concat!(
            "SELECT ",
            id_token_columns!(),
            " FROM id_tokens WHERE id_token IN ($1, $2) ORDER BY id_token, principal"
        ))
        .bind(exact)
        .bind(normal)
        .fetch_all(self.pool()?)
        .await?;
        rows::all(&found, rows::id_token)
    }

    async fn id_tokens(&self) -> Result<Vec<IdTokenRecord>, StoreError> {
        let found = sqlx::query(concat!(
            "SELECT ",
            id_token_columns!(),
            " FROM id_tokens ORDER BY id_token, principal"
        ))
        .fetch_all(self.pool()?)
        .await?;
        rows::all(&found, rows::id_token)
    }

    async fn id_tokens_of(&self, principal: &str) -> Result<Vec<IdTokenRecord>, StoreError> {
        let found = sqlx::query(concat!(
            "SELECT ",
            id_token_columns!(),
            " FROM id_tokens WHERE principal = $1 ORDER BY id_token"
        ))
        .bind(principal)
        .fetch_all(self.pool()?)
        .await?;
        rows::all(&found, rows::id_token)
    }

    async fn delete_id_token(&self, principal: &str, id_token: &str) -> Result<bool, StoreError> {
        let done = sqlx::query("DELETE FROM id_tokens WHERE id_token = $1 AND principal = $2")
            .bind(id_token)
            .bind(principal)
            .execute(self.pool()?)
            .await?;
        Ok(done.rows_affected() > 0)
    }

    async fn local_list(&self, charger: &str) -> Result<Option<LocalListRecord>, StoreError> {
        let found = sqlx::query(
            "SELECT charger, version, entries::text AS entries, updated_at FROM local_lists \
             WHERE charger = $1",
        )
        .bind(charger)
        .fetch_optional(self.pool()?)
        .await?;
        found.as_ref().map(rows::local_list).transpose()
    }

    async fn put_local_list(&self, list: &LocalListRecord) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO local_lists (charger, version, entries, updated_at) \
             VALUES ($1, $2, $3::jsonb, $4) \
             ON CONFLICT (charger) DO UPDATE SET version = excluded.version, \
             entries = excluded.entries, updated_at = excluded.updated_at",
        )
        .bind(&list.charger)
        .bind(list.version)
        .bind(list.entries.to_string())
        .bind(&list.updated_at)
        .execute(self.pool()?)
        .await?;
        Ok(())
    }

    async fn start_transaction(&self, t: &NewTransaction) -> Result<TransactionRecord, StoreError> {
        // The no-op DO UPDATE makes RETURNING yield the stored row on a retry; a concurrent
        // retry waits for the first insert's commit and then returns that row, so the insert
        // and the lookup are one atomic statement.
        let stored = sqlx::query(concat!(
            "INSERT INTO transactions \
             (charger, key, connector, id_token, principal, meter_start, started_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7) \
             ON CONFLICT (charger, key) DO UPDATE SET key = excluded.key RETURNING ",
            transaction_columns!()
        ))
        .bind(&t.charger)
        .bind(&t.key)
        .bind(i64::from(t.connector))
        .bind(&t.id_token)
        .bind(&t.principal)
        .bind(t.meter_start)
        .bind(&t.started_at)
        .fetch_one(self.pool()?)
        .await?;
        rows::transaction(&stored)
    }

    async fn add_meter_values(
        &self,
        charger: &str,
        transaction_id: i64,
        seq: Option<i64>,
        values: &serde_json::Value,
        at: &str,
    ) -> Result<(), StoreError> {
        let done = sqlx::query(
            "INSERT INTO meter_values (transaction_id, seq, sample, at) \
             SELECT id, $1, $2::jsonb, $3 FROM transactions WHERE id = $4 AND charger = $5 \
             ON CONFLICT DO NOTHING",
        )
        .bind(seq)
        .bind(values.to_string())
        .bind(at)
        .bind(transaction_id)
        .bind(charger)
        .execute(self.pool()?)
        .await?;
        if done.rows_affected() > 0 {
            return Ok(());
        }
        // Nothing inserted: either a resent message (same sequence number, or for 1.6 without
        // one the same sample at the same time) or no such transaction.
        let known = sqlx::query("SELECT 1 FROM transactions WHERE id = $1 AND charger = $2")
            .bind(transaction_id)
            .bind(charger)
            .fetch_optional(self.pool()?)
            .await?;
        match known {
            Some(_) => Ok(()),
            None => Err(StoreError::NotFound(format!(
                "charger `{charger}` has no transaction {transaction_id}"
            ))),
        }
    }

    async fn stop_transaction(
        &self,
        charger: &str,
        transaction_id: i64,
        meter_stop: Option<f64>,
        stopped_at: &str,
        reason: Option<&str>,
    ) -> Result<Option<TransactionRecord>, StoreError> {
        // SET expressions see the old row, so a second stop keeps the first one's values; the
        // row lock makes a concurrent second stop see the first one's commit.
        let stored = sqlx::query(concat!(
            "UPDATE transactions SET \
             meter_stop = CASE WHEN stopped_at IS NULL THEN $1 ELSE meter_stop END, \
             stop_reason = CASE WHEN stopped_at IS NULL THEN $2 ELSE stop_reason END, \
             stopped_at = COALESCE(stopped_at, $3) \
             WHERE id = $4 AND charger = $5 RETURNING ",
            transaction_columns!()
        ))
        .bind(meter_stop)
        .bind(reason)
        .bind(stopped_at)
        .bind(transaction_id)
        .bind(charger)
        .fetch_optional(self.pool()?)
        .await?;
        stored.as_ref().map(rows::transaction).transpose()
    }

    async fn transaction_by_key(
        &self,
        charger: &str,
        key: &str,
    ) -> Result<Option<TransactionRecord>, StoreError> {
        let found = sqlx::query(concat!(
            "SELECT ",
            transaction_columns!(),
            " FROM transactions WHERE charger = $1 AND key = $2"
        ))
        .bind(charger)
        .bind(key)
        .fetch_optional(self.pool()?)
        .await?;
        found.as_ref().map(rows::transaction).transpose()
    }

    async fn transactions(
        &self,
        filter: &TransactionFilter,
    ) -> Result<Vec<TransactionRecord>, StoreError> {
        let mut query = QueryBuilder::<Postgres>::new(concat!(
            "SELECT ",
            transaction_columns!(),
            " FROM transactions WHERE TRUE"
        ));
        if let Some(charger) = &filter.charger {
            query.push(" AND charger = ").push_bind(charger.as_str());
        }
        if let Some(principal) = &filter.principal {
            query
                .push(" AND principal = ")
                .push_bind(principal.as_str());
        }
        if filter.active_only {
            query.push(" AND stopped_at IS NULL");
        }
        query
            .push(" ORDER BY id DESC LIMIT ")
            .push_bind(sql_limit(filter.limit));
        let found = query.build().fetch_all(self.pool()?).await?;
        rows::all(&found, rows::transaction)
    }

    async fn append_audit(&self, r: &AuditRecord) -> Result<i64, StoreError> {
        self.pool()?;
        self.audit.append(r).await
    }

    async fn set_audit_outcome(&self, id: i64, outcome: &str) -> Result<(), StoreError> {
        self.pool()?;
        self.audit.set_outcome(id, outcome).await
    }

    async fn audit(&self, filter: &AuditFilter) -> Result<Vec<StoredAuditRecord>, StoreError> {
        let found = sqlx::query(concat!(
            "SELECT ",
            audit_columns!(),
            " FROM audit WHERE ($1::bigint IS NULL OR id < $1) ORDER BY id DESC LIMIT $2"
        ))
        .bind(filter.after_id)
        .bind(sql_limit(filter.limit))
        .fetch_all(self.pool()?)
        .await?;
        rows::all(&found, rows::audit)
    }

    async fn security_event(
        &self,
        charger: &str,
        kind: &str,
        at: &str,
        info: &serde_json::Value,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO security_events (charger, kind, at, info) VALUES ($1, $2, $3, $4::jsonb)",
        )
        .bind(charger)
        .bind(kind)
        .bind(at)
        .bind(info.to_string())
        .execute(self.pool()?)
        .await?;
        Ok(())
    }

    async fn close(&self) {
        PostgresStore::close(self).await;
    }

    async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(self.pool()?).await?;
        Ok(())
    }
}
