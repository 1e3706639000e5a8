//! Every statement the SQLite backend runs, one [`Store`] method at a time. Each write is a
//! single statement (the meter-values write adds a lookup only to tell a resend from an unknown
//! transaction), so it is atomic on its own and can share a group commit with others.

use sqlx::{QueryBuilder, Sqlite, SqliteConnection};

use super::{rows, SqliteStore};
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

/// SQLite's "no limit" is a negative LIMIT.
fn sql_limit(limit: u32) -> i64 {
    if limit == 0 {
        -1
    } else {
        i64::from(limit)
    }
}

#[async_trait::async_trait]
impl Store for SqliteStore {
    async fn scopes(&self) -> Result<Vec<ScopeRecord>, StoreError> {
        let stored = self
            .read(&(), |conn, ()| {
                Box::pin(async move {
                    let found =
                        sqlx::query("SELECT id, kind, parent, name FROM scopes ORDER BY rowid")
                            .fetch_all(conn)
                            .await?;
                    rows::all(&found, rows::scope)
                })
            })
            .await?;
        Ok(parents_first(stored))
    }

    async fn scope(&self, id: &str) -> Result<Option<ScopeRecord>, StoreError> {
        self.read(id, |conn, id| {
            Box::pin(async move {
                let found = sqlx::query("SELECT id, kind, parent, name FROM scopes WHERE id = ?")
                    .bind(id)
                    .fetch_optional(conn)
                    .await?;
                found.as_ref().map(rows::scope).transpose()
            })
        })
        .await
    }

    async fn put_scope(&self, s: &ScopeRecord) -> Result<(), StoreError> {
        self.write(s.clone(), |conn, s| {
            Box::pin(async move { upsert_scope(conn, s).await })
        })
        .await
    }

    async fn set_module(&self, scope: &str, module: &str, on: bool) -> Result<(), StoreError> {
        let setting = (scope.to_owned(), module.to_owned(), on);
        self.write(setting, |conn, (scope, module, on)| {
            Box::pin(async move {
                sqlx::query(
                    "INSERT INTO scope_modules (scope, module, enabled) VALUES (?, ?, ?) \
                     ON CONFLICT (scope, module) DO UPDATE SET enabled = excluded.enabled",
                )
                .bind(scope)
                .bind(module)
                .bind(*on)
                .execute(conn)
                .await?;
                Ok(())
            })
        })
        .await
    }

    async fn modules(&self) -> Result<Vec<(String, String, bool)>, StoreError> {
        self.read(&(), |conn, ()| {
            Box::pin(async move {
                let found =
                    sqlx::query("SELECT scope, module, enabled FROM scope_modules ORDER BY rowid")
                        .fetch_all(conn)
                        .await?;
                rows::all(&found, rows::module)
            })
        })
        .await
    }

    async fn put_principal(&self, p: &PrincipalRecord) -> Result<(), StoreError> {
        self.write(p.clone(), |conn, p| {
            Box::pin(async move {
                sqlx::query(
                    "INSERT INTO principals (id, kind, home_scope, name, blocked) \
                     VALUES (?, ?, ?, ?, ?) \
                     ON CONFLICT (id) DO UPDATE SET kind = excluded.kind, \
                     home_scope = excluded.home_scope, name = excluded.name, \
                     blocked = excluded.blocked",
                )
                .bind(&p.id)
                .bind(&p.kind)
                .bind(&p.home_scope)
                .bind(&p.name)
                .bind(p.blocked)
                .execute(conn)
                .await?;
                Ok(())
            })
        })
        .await
    }

    async fn principals(&self) -> Result<Vec<PrincipalRecord>, StoreError> {
        self.read(&(), |conn, ()| {
            Box::pin(async move {
                let found = sqlx::query(
                    "SELECT id, kind, home_scope, name, blocked FROM principals ORDER BY rowid",
                )
                .fetch_all(conn)
                .await?;
                rows::all(&found, rows::principal)
            })
        })
        .await
    }

    async fn delete_principal(&self, id: &str) -> Result<bool, StoreError> {
        // Tokens, id tokens and assignments go with it through ON DELETE CASCADE; the id is
        // retired in the same write.
        self.write(id.to_owned(), |conn, id| {
            Box::pin(async move {
                let done = sqlx::query("DELETE FROM principals WHERE id = ?")
                    .bind(id)
                    .execute(&mut *conn)
                    .await?;
                if done.rows_affected() == 0 {
                    return Ok(false);
                }
                sqlx::query("INSERT OR IGNORE INTO retired_principal_ids (id) VALUES (?)")
                    .bind(id)
                    .execute(&mut *conn)
                    .await?;
                Ok(true)
            })
        })
        .await
    }

    async fn principal_id_retired(&self, id: &str) -> Result<bool, StoreError> {
        self.read(&id.to_owned(), |conn, id| {
            Box::pin(async move {
                let found = sqlx::query("SELECT 1 FROM retired_principal_ids WHERE id = ?")
                    .bind(id)
                    .fetch_optional(conn)
                    .await?;
                Ok(found.is_some())
            })
        })
        .await
    }

    async fn set_principal_blocked(&self, id: &str, blocked: bool) -> Result<bool, StoreError> {
        self.write((id.to_owned(), blocked), |conn, (id, blocked)| {
            Box::pin(async move {
                let done = sqlx::query("UPDATE principals SET blocked = ? WHERE id = ?")
                    .bind(*blocked)
                    .bind(id)
                    .execute(conn)
                    .await?;
                Ok(done.rows_affected() > 0)
            })
        })
        .await
    }

    async fn put_role(&self, r: &RoleRecord) -> Result<(), StoreError> {
        let permissions = serde_json::Value::from(r.permissions.clone()).to_string();
        let role = (r.id.clone(), r.label.clone(), permissions);
        self.write(role, |conn, (id, label, permissions)| {
            Box::pin(async move {
                sqlx::query(
                    "INSERT INTO roles (id, label, permissions) VALUES (?, ?, ?) \
                     ON CONFLICT (id) DO UPDATE SET \
                     label = excluded.label, permissions = excluded.permissions",
                )
                .bind(id)
                .bind(label)
                .bind(permissions)
                .execute(conn)
                .await?;
                Ok(())
            })
        })
        .await
    }

    async fn roles(&self) -> Result<Vec<RoleRecord>, StoreError> {
        self.read(&(), |conn, ()| {
            Box::pin(async move {
                let found = sqlx::query("SELECT id, label, permissions FROM roles ORDER BY rowid")
                    .fetch_all(conn)
                    .await?;
                rows::all(&found, rows::role)
            })
        })
        .await
    }

    async fn add_assignment(&self, a: &AssignmentRecord) -> Result<bool, StoreError> {
        self.write(a.clone(), |conn, a| {
            Box::pin(async move {
                let done = sqlx::query(
                    "INSERT INTO assignments (principal, role, scope) VALUES (?, ?, ?) \
                     ON CONFLICT DO NOTHING",
                )
                .bind(&a.principal)
                .bind(&a.role)
                .bind(&a.scope)
                .execute(conn)
                .await
                .map_err(|err| {
                    refused_write(err, &a.principal, || {
                        "the assignment already exists".to_owned()
                    })
                })?;
                Ok(done.rows_affected() > 0)
            })
        })
        .await
    }

    async fn remove_assignment(&self, a: &AssignmentRecord) -> Result<bool, StoreError> {
        self.write(a.clone(), |conn, a| {
            Box::pin(async move {
                let done = sqlx::query(
                    "DELETE FROM assignments WHERE principal = ? AND role = ? AND scope = ?",
                )
                .bind(&a.principal)
                .bind(&a.role)
                .bind(&a.scope)
                .execute(conn)
                .await?;
                Ok(done.rows_affected() > 0)
            })
        })
        .await
    }

    async fn assignments(&self) -> Result<Vec<AssignmentRecord>, StoreError> {
        self.read(&(), |conn, ()| {
            Box::pin(async move {
                let found =
                    sqlx::query("SELECT principal, role, scope FROM assignments ORDER BY rowid")
                        .fetch_all(conn)
                        .await?;
                rows::all(&found, rows::assignment)
            })
        })
        .await
    }

    async fn put_charger(&self, c: &ChargerRecord) -> Result<(), StoreError> {
        self.write(c.clone(), |conn, c| {
            Box::pin(async move {
                sqlx::query(
                    "INSERT INTO chargers (id, scope, password_hash, security_profile, pending) \
                     VALUES (?, ?, ?, ?, ?) \
                     ON CONFLICT (id) DO UPDATE SET scope = excluded.scope, \
                     password_hash = excluded.password_hash, \
                     security_profile = excluded.security_profile",
                )
                .bind(&c.id)
                .bind(&c.scope)
                .bind(&c.password_hash)
                .bind(i64::from(c.security_profile))
                .bind(i64::from(c.pending))
                .execute(conn)
                .await?;
                Ok(())
            })
        })
        .await
    }

    async fn add_charger(
        &self,
        c: &ChargerRecord,
        station: &ScopeRecord,
    ) -> Result<bool, StoreError> {
        self.write((c.clone(), station.clone()), |conn, (c, station)| {
            Box::pin(async move {
                let added = sqlx::query(
                    "INSERT INTO chargers (id, scope, password_hash, security_profile, pending) \
                     VALUES (?, ?, ?, ?, ?) ON CONFLICT (id) DO NOTHING",
                )
                .bind(&c.id)
                .bind(&c.scope)
                .bind(&c.password_hash)
                .bind(i64::from(c.security_profile))
                .bind(i64::from(c.pending))
                .execute(&mut *conn)
                .await?;
                if added.rows_affected() == 0 {
                    return Ok(false);
                }
                upsert_scope(conn, station).await?;
                Ok(true)
            })
        })
        .await
    }

    async fn chargers_named(&self, ids: &[String]) -> Result<Vec<ChargerRecord>, StoreError> {
        let mut found = Vec::with_capacity(ids.len());
        // Well inside SQLite's limit on bound parameters.
        for chunk in ids.chunks(500) {
            let records = self
                .read(chunk, |conn, chunk| {
                    Box::pin(async move {
                        let mut query = QueryBuilder::<Sqlite>::new(
                            "SELECT id, scope, password_hash, security_profile, pending \
                             FROM chargers WHERE id IN (",
                        );
                        let mut ids = query.separated(", ");
                        for id in chunk {
                            ids.push_bind(id.as_str());
                        }
                        query.push(")");
                        let rows = query.build().fetch_all(conn).await?;
                        rows::all(&rows, rows::charger)
                    })
                })
                .await?;
            found.extend(records);
        }
        Ok(found)
    }

    async fn charger(&self, id: &str) -> Result<Option<ChargerRecord>, StoreError> {
        self.read(id, |conn, id| {
            Box::pin(async move {
                let found = sqlx::query(
                    "SELECT id, scope, password_hash, security_profile, pending FROM chargers WHERE id = ?",
                )
                .bind(id)
                .fetch_optional(conn)
                .await?;
                found.as_ref().map(rows::charger).transpose()
            })
        })
        .await
    }

    async fn chargers(&self) -> Result<Vec<ChargerRecord>, StoreError> {
        self.read(&(), |conn, ()| {
            Box::pin(async move {
                let found = sqlx::query(
                    "SELECT id, scope, password_hash, security_profile, pending FROM chargers ORDER BY id",
                )
                .fetch_all(conn)
                .await?;
                rows::all(&found, rows::charger)
            })
        })
        .await
    }

    async fn charger_pending(&self, id: &str) -> Result<bool, StoreError> {
        self.read(id, |conn, id| {
            Box::pin(async move {
                let pending: Option<i64> =
                    sqlx::query_scalar("SELECT pending FROM chargers WHERE id = ?")
                        .bind(id)
                        .fetch_optional(conn)
                        .await?;
                Ok(pending.is_some_and(|p| p != 0))
            })
        })
        .await
    }

    async fn set_charger_pending(&self, id: &str, pending: bool) -> Result<bool, StoreError> {
        self.write((id.to_owned(), pending), |conn, (id, pending)| {
            Box::pin(async move {
                let done = sqlx::query("UPDATE chargers SET pending = ? WHERE id = ?")
                    .bind(i64::from(*pending))
                    .bind(id)
                    .execute(conn)
                    .await?;
                Ok(done.rows_affected() > 0)
            })
        })
        .await
    }

    async fn set_charger_schema_tolerance(
        &self,
        id: &str,
        tolerance: Option<&str>,
    ) -> Result<bool, StoreError> {
        let change = (id.to_owned(), tolerance.map(str::to_owned));
        self.write(change, |conn, (id, tolerance)| {
            Box::pin(async move {
                let done = sqlx::query("UPDATE chargers SET schema_tolerance = ? WHERE id = ?")
                    .bind(tolerance.as_deref())
                    .bind(id)
                    .execute(conn)
                    .await?;
                Ok(done.rows_affected() > 0)
            })
        })
        .await
    }

    async fn charger_schema_tolerances(&self) -> Result<Vec<(String, String)>, StoreError> {
        self.read(&(), |conn, ()| {
            Box::pin(async move {
                let found: Vec<(String, String)> = sqlx::query_as(
                    "SELECT id, schema_tolerance FROM chargers \
                     WHERE schema_tolerance IS NOT NULL ORDER BY id",
                )
                .fetch_all(conn)
                .await?;
                Ok(found)
            })
        })
        .await
    }

    async fn set_charger_behaviour(&self, b: &ChargerBehaviour) -> Result<bool, StoreError> {
        self.write(b.clone(), |conn, b| {
            Box::pin(async move {
                let done = sqlx::query(
                    "UPDATE chargers SET post_boot_sync = ?, free_vend = ? WHERE id = ?",
                )
                .bind(b.post_boot_sync.as_deref())
                .bind(i64::from(b.free_vend))
                .bind(&b.id)
                .execute(conn)
                .await?;
                Ok(done.rows_affected() > 0)
            })
        })
        .await
    }

    async fn charger_behaviours(&self) -> Result<Vec<ChargerBehaviour>, StoreError> {
        self.read(&(), |conn, ()| {
            Box::pin(async move {
                let found: Vec<(String, Option<String>, i64)> = sqlx::query_as(
                    "SELECT id, post_boot_sync, free_vend FROM chargers \
                     WHERE post_boot_sync IS NOT NULL OR free_vend != 0 ORDER BY id",
                )
                .fetch_all(conn)
                .await?;
                Ok(found
                    .into_iter()
                    .map(|(id, post_boot_sync, free_vend)| ChargerBehaviour {
                        id,
                        post_boot_sync,
                        free_vend: free_vend != 0,
                    })
                    .collect())
            })
        })
        .await
    }

    async fn record_boot(&self, id: &str, boot: &BootRecord) -> Result<(), StoreError> {
        self.write((id.to_owned(), boot.clone()), |conn, (id, boot)| {
            Box::pin(async move {
                sqlx::query(
                    "INSERT INTO charger_boots \
                     (charger, vendor, model, serial, firmware, ocpp_version, at) \
                     VALUES (?, ?, ?, ?, ?, ?, ?)",
                )
                .bind(id)
                .bind(&boot.vendor)
                .bind(&boot.model)
                .bind(&boot.serial)
                .bind(&boot.firmware)
                .bind(&boot.ocpp_version)
                .bind(&boot.at)
                .execute(conn)
                .await?;
                Ok(())
            })
        })
        .await
    }

    async fn add_api_token(&self, t: &ApiTokenRecord) -> Result<(), StoreError> {
        self.write(t.clone(), |conn, t| {
            Box::pin(async move {
                sqlx::query(
                    "INSERT INTO api_tokens (id, principal, hash, created_at, expires_at) \
                     VALUES (?, ?, ?, ?, ?)",
                )
                .bind(&t.id)
                .bind(&t.principal)
                .bind(&t.hash)
                .bind(&t.created_at)
                .bind(&t.expires_at)
                .execute(conn)
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
            })
        })
        .await
    }

    async fn principal_for_token_hash(
        &self,
        hash: &str,
    ) -> Result<Option<ApiTokenRecord>, StoreError> {
        self.read(hash, |conn, hash| {
            Box::pin(async move {
                let found = sqlx::query(
                    "SELECT id, principal, hash, created_at, expires_at FROM api_tokens \
                     WHERE hash = ?",
                )
                .bind(hash)
                .fetch_optional(conn)
                .await?;
                found.as_ref().map(rows::api_token).transpose()
            })
        })
        .await
    }

    async fn api_tokens_of(&self, principal: &str) -> Result<Vec<ApiTokenRecord>, StoreError> {
        self.read(principal, |conn, principal| {
            Box::pin(async move {
                let found = sqlx::query(
                    "SELECT id, principal, hash, created_at, expires_at FROM api_tokens \
                     WHERE principal = ? ORDER BY rowid",
                )
                .bind(principal)
                .fetch_all(conn)
                .await?;
                rows::all(&found, rows::api_token)
            })
        })
        .await
    }

    async fn revoke_api_token(&self, id: &str) -> Result<bool, StoreError> {
        self.write(id.to_owned(), |conn, id| {
            Box::pin(async move {
                let done = sqlx::query("DELETE FROM api_tokens WHERE id = ?")
                    .bind(id)
                    .execute(conn)
                    .await?;
                Ok(done.rows_affected() > 0)
            })
        })
        .await
    }

    async fn put_id_token(&self, t: &IdTokenRecord) -> Result<(), StoreError> {
        self.write(t.clone(), |conn, t| {
            Box::pin(async move {
                sqlx::query(
                    "INSERT INTO id_tokens (id_token, principal, blocked, expires_at, group_id, \
                     token_type) VALUES (?, ?, ?, ?, ?, ?) \
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
                .execute(conn)
                .await
                .map_err(|err| {
                    refused_write(err, &t.principal, || {
                        format!("id token `{}` already exists", t.id_token)
                    })
                })?;
                Ok(())
            })
        })
        .await
    }

    async fn id_tokens_named(
        &self,
        exact: &str,
        normal: &str,
    ) -> Result<Vec<IdTokenRecord>, StoreError> {
        self.read(&(exact, normal), |conn, (exact, normal)| {
            Box::pin(async move {
                let found = sqlx::query(
                    "SELECT id_token, principal, blocked, expires_at, group_id, token_type FROM id_tokens \
                     WHERE id_token IN (?, ?) ORDER BY id_token, principal",
                )
                .bind(exact)
                .bind(normal)
                .fetch_all(conn)
                .await?;
                rows::all(&found, rows::id_token)
            })
        })
        .await
    }

    async fn id_tokens(&self) -> Result<Vec<IdTokenRecord>, StoreError> {
        self.read(&(), |conn, ()| {
            Box::pin(async move {
                let found = sqlx::query(
                    "SELECT id_token, principal, blocked, expires_at, group_id, token_type FROM id_tokens \
                     ORDER BY id_token, principal",
                )
                .fetch_all(conn)
                .await?;
                rows::all(&found, rows::id_token)
            })
        })
        .await
    }

    async fn close(&self) {
        SqliteStore::close(self).await;
    }

    async fn ping(&self) -> Result<(), StoreError> {
        self.read(&(), |conn, ()| {
            Box::pin(async move {
                sqlx::query("SELECT 1").execute(conn).await?;
                Ok(())
            })
        })
        .await
    }

    async fn id_tokens_of(&self, principal: &str) -> Result<Vec<IdTokenRecord>, StoreError> {
        self.read(principal, |conn, principal| {
            Box::pin(async move {
                let found = sqlx::query(
                    "SELECT id_token, principal, blocked, expires_at, group_id, token_type FROM id_tokens \
                     WHERE principal = ? ORDER BY id_token",
                )
                .bind(principal)
                .fetch_all(conn)
                .await?;
                rows::all(&found, rows::id_token)
            })
        })
        .await
    }

    async fn delete_id_token(&self, principal: &str, id_token: &str) -> Result<bool, StoreError> {
        self.write(
            (principal.to_owned(), id_token.to_owned()),
            |conn, (principal, id_token)| {
                Box::pin(async move {
                    let done =
                        sqlx::query("DELETE FROM id_tokens WHERE id_token = ? AND principal = ?")
                            .bind(id_token)
                            .bind(principal)
                            .execute(conn)
                            .await?;
                    Ok(done.rows_affected() > 0)
                })
            },
        )
        .await
    }

    async fn local_list(&self, charger: &str) -> Result<Option<LocalListRecord>, StoreError> {
        self.read(charger, |conn, charger| {
            Box::pin(async move {
                let found = sqlx::query(
                    "SELECT charger, version, entries, updated_at FROM local_lists \
                     WHERE charger = ?",
                )
                .bind(charger)
                .fetch_optional(conn)
                .await?;
                found.as_ref().map(rows::local_list).transpose()
            })
        })
        .await
    }

    async fn put_local_list(&self, list: &LocalListRecord) -> Result<(), StoreError> {
        let row = (
            list.charger.clone(),
            list.version,
            list.entries.to_string(),
            list.updated_at.clone(),
        );
        self.write(row, |conn, (charger, version, entries, updated_at)| {
            Box::pin(async move {
                sqlx::query(
                    "INSERT INTO local_lists (charger, version, entries, updated_at) \
                     VALUES (?, ?, ?, ?) \
                     ON CONFLICT (charger) DO UPDATE SET version = excluded.version, \
                     entries = excluded.entries, updated_at = excluded.updated_at",
                )
                .bind(charger)
                .bind(*version)
                .bind(entries)
                .bind(updated_at)
                .execute(conn)
                .await?;
                Ok(())
            })
        })
        .await
    }

    async fn start_transaction(&self, t: &NewTransaction) -> Result<TransactionRecord, StoreError> {
        // The no-op DO UPDATE makes RETURNING yield the stored row on a retry, so the insert
        // and the lookup are one atomic statement even under concurrent retries.
        self.write(t.clone(), |conn, t| {
            Box::pin(async move {
                let stored = sqlx::query(concat!(
                    "INSERT INTO transactions \
                     (charger, key, connector, id_token, principal, meter_start, started_at) \
                     VALUES (?, ?, ?, ?, ?, ?, ?) \
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
                .fetch_one(conn)
                .await?;
                rows::transaction(&stored)
            })
        })
        .await
    }

    async fn add_meter_values(
        &self,
        charger: &str,
        transaction_id: i64,
        seq: Option<i64>,
        values: &serde_json::Value,
        at: &str,
    ) -> Result<(), StoreError> {
        let sample = (
            charger.to_owned(),
            transaction_id,
            seq,
            values.to_string(),
            at.to_owned(),
        );
        self.write(sample, |conn, (charger, id, seq, values, at)| {
            Box::pin(async move {
                let done = sqlx::query(
                    "INSERT INTO meter_values (transaction_id, seq, sample, at) \
                     SELECT id, ?, ?, ? FROM transactions WHERE id = ? AND charger = ? \
                     ON CONFLICT DO NOTHING",
                )
                .bind(*seq)
                .bind(values)
                .bind(at)
                .bind(*id)
                .bind(charger)
                .execute(&mut *conn)
                .await?;
                if done.rows_affected() > 0 {
                    return Ok(());
                }
                // Nothing inserted: either a resent message (same sequence number, or for
                // 1.6 without one the same sample) or no such
                // transaction. Asked on the write connection, which sees its own batch.
                let known = sqlx::query("SELECT 1 FROM transactions WHERE id = ? AND charger = ?")
                    .bind(*id)
                    .bind(charger)
                    .fetch_optional(conn)
                    .await?;
                match known {
                    Some(_) => Ok(()),
                    None => Err(StoreError::NotFound(format!(
                        "charger `{charger}` has no transaction {id}"
                    ))),
                }
            })
        })
        .await
    }

    async fn stop_transaction(
        &self,
        charger: &str,
        transaction_id: i64,
        meter_stop: Option<f64>,
        stopped_at: &str,
        reason: Option<&str>,
    ) -> Result<Option<TransactionRecord>, StoreError> {
        let stop = (
            charger.to_owned(),
            transaction_id,
            meter_stop,
            stopped_at.to_owned(),
            reason.map(str::to_owned),
        );
        self.write(
            stop,
            |conn, (charger, id, meter_stop, stopped_at, reason)| {
                Box::pin(async move {
                    // SET expressions see the old row, so a second stop keeps the first one's values.
                    let stored = sqlx::query(concat!(
                        "UPDATE transactions SET \
                     meter_stop = CASE WHEN stopped_at IS NULL THEN ? ELSE meter_stop END, \
                     stop_reason = CASE WHEN stopped_at IS NULL THEN ? ELSE stop_reason END, \
                     stopped_at = COALESCE(stopped_at, ?) \
                     WHERE id = ? AND charger = ? RETURNING ",
                        transaction_columns!()
                    ))
                    .bind(*meter_stop)
                    .bind(reason)
                    .bind(stopped_at)
                    .bind(*id)
                    .bind(charger)
                    .fetch_optional(conn)
                    .await?;
                    stored.as_ref().map(rows::transaction).transpose()
                })
            },
        )
        .await
    }

    async fn transaction_by_key(
        &self,
        charger: &str,
        key: &str,
    ) -> Result<Option<TransactionRecord>, StoreError> {
        self.read(&(charger, key), |conn, (charger, key)| {
            Box::pin(async move {
                let found = sqlx::query(concat!(
                    "SELECT ",
                    transaction_columns!(),
                    " FROM transactions WHERE charger = ? AND key = ?"
                ))
                .bind(*charger)
                .bind(*key)
                .fetch_optional(conn)
                .await?;
                found.as_ref().map(rows::transaction).transpose()
            })
        })
        .await
    }

    async fn transactions(
        &self,
        filter: &TransactionFilter,
    ) -> Result<Vec<TransactionRecord>, StoreError> {
        self.read(filter, |conn, filter| {
            Box::pin(async move {
                // Only the conditions in use are written out, so SQLite picks the matching
                // index instead of scanning.
                let mut query = QueryBuilder::<Sqlite>::new(concat!(
                    "SELECT ",
                    transaction_columns!(),
                    " FROM transactions WHERE 1 = 1"
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
                let found = query.build().fetch_all(conn).await?;
                rows::all(&found, rows::transaction)
            })
        })
        .await
    }

    async fn append_audit(&self, r: &AuditRecord) -> Result<i64, StoreError> {
        self.write(r.clone(), |conn, r| {
            Box::pin(async move {
                let done = sqlx::query(
                    "INSERT INTO audit \
                     (at, principal, action, resource, allowed, reason, outcome, request_id) \
                     VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                )
                .bind(&r.at)
                .bind(&r.principal)
                .bind(&r.action)
                .bind(&r.resource)
                .bind(r.allowed)
                .bind(&r.reason)
                .bind(&r.outcome)
                .bind(&r.request_id)
                .execute(conn)
                .await?;
                Ok(done.last_insert_rowid())
            })
        })
        .await
    }

    async fn set_audit_outcome(&self, id: i64, outcome: &str) -> Result<(), StoreError> {
        self.write((id, outcome.to_owned()), |conn, (id, outcome)| {
            Box::pin(async move {
                let done = sqlx::query("UPDATE audit SET outcome = ? WHERE id = ?")
                    .bind(outcome)
                    .bind(*id)
                    .execute(conn)
                    .await?;
                if done.rows_affected() == 0 {
                    return Err(StoreError::NotFound(format!("audit record {id}")));
                }
                Ok(())
            })
        })
        .await
    }

    async fn audit(&self, filter: &AuditFilter) -> Result<Vec<StoredAuditRecord>, StoreError> {
        self.read(filter, |conn, filter| {
            Box::pin(async move {
                let limit = sql_limit(filter.limit);
                let found = match filter.after_id {
                    Some(after_id) => {
                        sqlx::query(concat!(
                            "SELECT ",
                            audit_columns!(),
                            " FROM audit WHERE id < ? ORDER BY id DESC LIMIT ?"
                        ))
                        .bind(after_id)
                        .bind(limit)
                        .fetch_all(conn)
                        .await?
                    }
                    None => {
                        sqlx::query(concat!(
                            "SELECT ",
                            audit_columns!(),
                            " FROM audit ORDER BY id DESC LIMIT ?"
                        ))
                        .bind(limit)
                        .fetch_all(conn)
                        .await?
                    }
                };
                rows::all(&found, rows::audit)
            })
        })
        .await
    }

    async fn security_event(
        &self,
        charger: &str,
        kind: &str,
        at: &str,
        info: &serde_json::Value,
    ) -> Result<(), StoreError> {
        let event = (
            charger.to_owned(),
            kind.to_owned(),
            at.to_owned(),
            info.to_string(),
        );
        self.write(event, |conn, (charger, kind, at, info)| {
            Box::pin(async move {
                sqlx::query(
                    "INSERT INTO security_events (charger, kind, at, info) VALUES (?, ?, ?, ?)",
                )
                .bind(charger)
                .bind(kind)
                .bind(at)
                .bind(info)
                .execute(conn)
                .await?;
                Ok(())
            })
        })
        .await
    }
}
/// Inserts a scope, or replaces the one of that id.
async fn upsert_scope(conn: &mut SqliteConnection, s: &ScopeRecord) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO scopes (id, kind, parent, name) VALUES (?, ?, ?, ?) \
         ON CONFLICT (id) DO UPDATE SET \
         kind = excluded.kind, parent = excluded.parent, name = excluded.name",
    )
    .bind(&s.id)
    .bind(&s.kind)
    .bind(&s.parent)
    .bind(&s.name)
    .execute(conn)
    .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A database written before id tokens had a type keeps its tokens, untyped, after the
    /// migration that adds the column.
    #[tokio::test]
    async fn an_id_token_stored_before_types_existed_migrates_untyped() {
        use sqlx::{ConnectOptions, Connection};
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("voltgate.db");
        let url = format!("sqlite://{}", path.display());
        let store = SqliteStore::open(&url).await.unwrap();
        store
            .put_principal(&PrincipalRecord {
                id: "driver-1".to_owned(),
                kind: "driver".to_owned(),
                home_scope: "org".to_owned(),
                name: "Driver".to_owned(),
                blocked: false,
            })
            .await
            .unwrap();
        store.close().await;
        drop(store);

        // Turn the file back into the schema before the type column, holding one token.
        let mut conn = sqlx::sqlite::SqliteConnectOptions::new()
            .filename(&path)
            .connect()
            .await
            .unwrap();
        for statement in [
            "ALTER TABLE id_tokens DROP COLUMN token_type",
            "DELETE FROM _sqlx_migrations WHERE version = 4",
            "INSERT INTO id_tokens (id_token, principal, blocked, expires_at, group_id) \
             VALUES ('OLD-CARD', 'driver-1', 0, NULL, 'fleet')",
        ] {
            sqlx::query(statement).execute(&mut conn).await.unwrap();
        }
        conn.close().await.unwrap();

        let reopened = SqliteStore::open(&url).await.unwrap();
        let old = reopened
            .id_tokens_named("OLD-CARD", "OLD-CARD")
            .await
            .unwrap()
            .pop()
            .unwrap();
        assert_eq!(old.token_type, None);
        assert_eq!(old.group.as_deref(), Some("fleet"));
        let typed = IdTokenRecord {
            id_token: "NEW-CARD".to_owned(),
            token_type: Some("eMAID".to_owned()),
            ..old
        };
        reopened.put_id_token(&typed).await.unwrap();
        assert_eq!(
            reopened
                .id_tokens_named("NEW-CARD", "NEW-CARD")
                .await
                .unwrap(),
            [typed]
        );
    }

    /// A store file holding the drivers `driver-1` and `driver-2`, closed, with its URL and a
    /// raw connection to it, for putting rows back the way an earlier migration left them.
    async fn two_drivers_on_disk() -> (tempfile::TempDir, String, sqlx::SqliteConnection) {
        use sqlx::ConnectOptions;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("voltgate.db");
        let url = format!("sqlite://{}", path.display());
        let store = SqliteStore::open(&url).await.unwrap();
        for id in ["driver-1", "driver-2"] {
            store
                .put_principal(&PrincipalRecord {
                    id: id.to_owned(),
                    kind: "driver".to_owned(),
                    home_scope: "org".to_owned(),
                    name: "Driver".to_owned(),
                    blocked: false,
                })
                .await
                .unwrap();
        }
        store.close().await;
        drop(store);
        let conn = sqlx::sqlite::SqliteConnectOptions::new()
            .filename(&path)
            .connect()
            .await
            .unwrap();
        (dir, url, conn)
    }

    /// Migration 0010 keys id tokens by text and principal, keeping every stored row, so two
    /// principals (of different tenants) can then hold one text.
    #[tokio::test]
    async fn id_tokens_stored_under_the_global_key_survive_the_per_tenant_key() {
        use sqlx::Connection;
        let (_dir, url, mut conn) = two_drivers_on_disk().await;
        for statement in [
            "DROP TABLE id_tokens",
            "CREATE TABLE id_tokens (id_token TEXT PRIMARY KEY NOT NULL, \
             principal TEXT NOT NULL REFERENCES principals (id) ON DELETE CASCADE, \
             blocked INTEGER NOT NULL DEFAULT 0, expires_at TEXT, group_id TEXT, token_type TEXT)",
            "CREATE INDEX id_tokens_by_principal ON id_tokens (principal)",
            "DELETE FROM _sqlx_migrations WHERE version = 10",
            "INSERT INTO id_tokens VALUES ('CARD-1', 'driver-1', 1, '2030-01-01T00:00:00Z', 'fleet', 'eMAID')",
        ] {
            sqlx::query(statement).execute(&mut conn).await.unwrap();
        }
        conn.close().await.unwrap();

        let reopened = SqliteStore::open(&url).await.unwrap();
        let kept = IdTokenRecord {
            id_token: "CARD-1".to_owned(),
            principal: "driver-1".to_owned(),
            blocked: true,
            expires_at: Some("2030-01-01T00:00:00Z".to_owned()),
            group: Some("fleet".to_owned()),
            token_type: Some("eMAID".to_owned()),
        };
        assert_eq!(
            reopened.id_tokens().await.unwrap(),
            std::slice::from_ref(&kept)
        );
        let second = IdTokenRecord {
            principal: "driver-2".to_owned(),
            ..kept.clone()
        };
        reopened.put_id_token(&second).await.unwrap();
        assert_eq!(
            reopened.id_tokens_named("CARD-1", "CARD-1").await.unwrap(),
            [kept, second]
        );
    }

    /// Migration 0007 puts stored id tokens into their one form (trimmed, upper case) unless
    /// that would merge two rows, or the rule refuses the text: those stay as they were.
    #[tokio::test]
    async fn stored_id_tokens_take_their_normal_form_unless_two_would_collide() {
        use sqlx::Connection;
        let (_dir, url, mut conn) = two_drivers_on_disk().await;
        sqlx::query("DELETE FROM _sqlx_migrations WHERE version = 7")
            .execute(&mut conn)
            .await
            .unwrap();
        for (token, principal) in [
            ("lower01", "driver-1"),
            (" PAD01 ", "driver-1"),
            ("SAME01", "driver-1"),
            ("same01", "driver-2"),
            ("twin01", "driver-1"),
            ("TWIN01 ", "driver-2"),
            ("IN SIDE", "driver-1"),
            ("ｗｉｄｅ", "driver-1"),
        ] {
            sqlx::query("INSERT INTO id_tokens (id_token, principal) VALUES (?, ?)")
                .bind(token)
                .bind(principal)
                .execute(&mut conn)
                .await
                .unwrap();
        }
        conn.close().await.unwrap();

        let reopened = SqliteStore::open(&url).await.unwrap();
        let mut stored: Vec<(String, String)> = reopened
            .id_tokens()
            .await
            .unwrap()
            .into_iter()
            .map(|t| (t.id_token, t.principal))
            .collect();
        stored.sort();
        let expected = [
            ("IN SIDE", "driver-1"),
            ("LOWER01", "driver-1"),
            ("PAD01", "driver-1"),
            ("SAME01", "driver-1"),
            ("TWIN01 ", "driver-2"),
            ("same01", "driver-2"),
            ("twin01", "driver-1"),
            ("ｗｉｄｅ", "driver-1"),
        ]
        .map(|(t, p)| (t.to_owned(), p.to_owned()));
        assert_eq!(stored, expected);
    }
}
