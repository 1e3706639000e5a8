//! Contract tests of the store: every method on an in-memory and on a file SQLite database and
//! on a PostgreSQL database, plus reopening, repeated migrations and concurrent writers.

use std::collections::HashSet;
use std::sync::Arc;

use serde_json::json;
use voltgate_store::{
    open, ApiTokenRecord, AssignmentRecord, AuditFilter, AuditRecord, BootRecord, ChargerBehaviour,
    ChargerRecord, IdTokenRecord, LocalListRecord, MeterValuesRecord, NewTransaction,
    PostgresStore, PrincipalRecord, RoleRecord, ScopeRecord, SecurityEventRecord, SqliteStore,
    Store, StoreError, TransactionFilter,
};
use voltgate_tests::PostgresServer;

/// A store under test and, for file databases, the directory that keeps the file alive.
struct Fixture<S> {
    store: Arc<S>,
    _dir: Option<tempfile::TempDir>,
}

async fn memory() -> Fixture<SqliteStore> {
    Fixture {
        store: Arc::new(SqliteStore::open("sqlite::memory:").await.unwrap()),
        _dir: None,
    }
}

async fn file() -> Fixture<SqliteStore> {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("voltgate.db").display());
    Fixture {
        store: Arc::new(SqliteStore::open(&url).await.unwrap()),
        _dir: Some(dir),
    }
}

/// A fresh database on this test process's PostgreSQL server.
async fn postgres() -> Fixture<PostgresStore> {
    let url = PostgresServer::shared().create_database().unwrap();
    Fixture {
        store: Arc::new(PostgresStore::open(&url).await.unwrap()),
        _dir: None,
    }
}

/// The reads the checks use beyond the [`Store`] trait, which each backend offers itself.
trait Inspect: Store {
    async fn boots(&self, charger: &str) -> Result<Vec<BootRecord>, StoreError>;
    async fn meter_values(
        &self,
        charger: &str,
        transaction_id: i64,
    ) -> Result<Vec<MeterValuesRecord>, StoreError>;
    async fn security_events(&self, charger: &str) -> Result<Vec<SecurityEventRecord>, StoreError>;
}

impl Inspect for SqliteStore {
    async fn boots(&self, charger: &str) -> Result<Vec<BootRecord>, StoreError> {
        SqliteStore::boots(self, charger).await
    }
    async fn meter_values(
        &self,
        charger: &str,
        transaction_id: i64,
    ) -> Result<Vec<MeterValuesRecord>, StoreError> {
        SqliteStore::meter_values(self, charger, transaction_id).await
    }
    async fn security_events(&self, charger: &str) -> Result<Vec<SecurityEventRecord>, StoreError> {
        SqliteStore::security_events(self, charger).await
    }
}

impl Inspect for PostgresStore {
    async fn boots(&self, charger: &str) -> Result<Vec<BootRecord>, StoreError> {
        PostgresStore::boots(self, charger).await
    }
    async fn meter_values(
        &self,
        charger: &str,
        transaction_id: i64,
    ) -> Result<Vec<MeterValuesRecord>, StoreError> {
        PostgresStore::meter_values(self, charger, transaction_id).await
    }
    async fn security_events(&self, charger: &str) -> Result<Vec<SecurityEventRecord>, StoreError> {
        PostgresStore::security_events(self, charger).await
    }
}

/// Runs each check on `sqlite::memory:`, on a temporary SQLite file and on a fresh PostgreSQL
/// database.
macro_rules! on_both_backends {
    ($($check:ident),* $(,)?) => {
        mod on_memory {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $check() {
                    let fixture = super::memory().await;
                    super::$check(&fixture.store).await;
                }
            )*
        }
        mod on_file {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $check() {
                    let fixture = super::file().await;
                    super::$check(&fixture.store).await;
                }
            )*
        }
        mod on_postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $check() {
                    let fixture = super::postgres().await;
                    super::$check(&fixture.store).await;
                }
            )*
        }
    };
}

on_both_backends!(
    ping_answers_while_open_and_fails_once_closed,
    scopes_come_back_parents_first,
    modules_are_replaced_not_duplicated,
    principals_round_trip_and_block,
    deleting_a_principal_takes_its_credentials_and_assignments,
    roles_round_trip,
    assignments_are_a_set,
    chargers_and_boots,
    a_charger_is_added_with_its_station_once,
    chargers_are_read_by_the_batch,
    charger_schema_tolerance_survives_rewrites,
    charger_behaviour_survives_rewrites,
    api_tokens,
    id_tokens,
    id_tokens_per_principal_and_deletion,
    local_lists_round_trip,
    start_transaction_is_idempotent,
    meter_values_need_the_chargers_transaction,
    first_stop_wins,
    transaction_filters,
    audit_is_newest_first_and_pages,
    audit_outcome,
    audit_writes_at_once_each_get_their_own_record,
    security_events_are_kept,
    concurrent_writers_lose_nothing,
    concurrent_retries_make_one_transaction,
);

fn scope(id: &str, kind: &str, parent: Option<&str>) -> ScopeRecord {
    ScopeRecord {
        id: id.to_owned(),
        kind: kind.to_owned(),
        parent: parent.map(str::to_owned),
        name: Some(format!("{id} name")),
    }
}

fn principal(id: &str) -> PrincipalRecord {
    PrincipalRecord {
        id: id.to_owned(),
        kind: "operator".to_owned(),
        home_scope: "org".to_owned(),
        name: format!("{id} name"),
        blocked: false,
    }
}

fn assignment(principal: &str, role: &str, scope: &str) -> AssignmentRecord {
    AssignmentRecord {
        principal: principal.to_owned(),
        role: role.to_owned(),
        scope: scope.to_owned(),
    }
}

fn api_token(id: &str, principal: &str, hash: &str) -> ApiTokenRecord {
    ApiTokenRecord {
        id: id.to_owned(),
        principal: principal.to_owned(),
        hash: hash.to_owned(),
        created_at: "2025-01-01T00:00:00Z".to_owned(),
        expires_at: Some("2026-01-01T00:00:00Z".to_owned()),
    }
}

fn id_token(token: &str, principal: &str) -> IdTokenRecord {
    IdTokenRecord {
        id_token: token.to_owned(),
        principal: principal.to_owned(),
        blocked: false,
        expires_at: None,
        group: Some("fleet".to_owned()),
        token_type: None,
    }
}

fn new_transaction(charger: &str, key: &str) -> NewTransaction {
    NewTransaction {
        charger: charger.to_owned(),
        key: key.to_owned(),
        connector: 1,
        id_token: Some("RFID-1".to_owned()),
        principal: Some("driver-1".to_owned()),
        meter_start: Some(1000.0),
        started_at: "2025-03-01T10:00:00Z".to_owned(),
    }
}

fn audit_record(n: usize) -> AuditRecord {
    AuditRecord {
        at: format!("2025-03-01T10:00:{:02}Z", n % 60),
        principal: format!("operator-{}", n % 7),
        action: "command.reset".to_owned(),
        resource: format!("charger:CP-{n}"),
        allowed: n % 2 == 0,
        reason: "holds technician on org".to_owned(),
        outcome: None,
        request_id: Some(format!("req-{n}")),
    }
}

async fn scopes_come_back_parents_first(store: &Arc<impl Inspect>) {
    store
        .put_scope(&scope("station-1", "station", Some("site")))
        .await
        .unwrap();
    store
        .put_scope(&scope("site", "site", Some("org")))
        .await
        .unwrap();
    store
        .put_scope(&scope("org", "organisation", Some("root")))
        .await
        .unwrap();
    let ids: Vec<String> = store
        .scopes()
        .await
        .unwrap()
        .into_iter()
        .map(|s| s.id)
        .collect();
    assert_eq!(ids, ["org", "site", "station-1"]);

    let renamed = ScopeRecord {
        name: None,
        ..scope("site", "site", Some("org"))
    };
    store.put_scope(&renamed).await.unwrap();
    let scopes = store.scopes().await.unwrap();
    assert_eq!(scopes.len(), 3);
    assert_eq!(scopes[1], renamed);
    assert_eq!(scopes[0], scope("org", "organisation", Some("root")));
    assert_eq!(store.scope("site").await.unwrap(), Some(renamed));
    assert_eq!(
        store.scope("station-1").await.unwrap(),
        Some(scope("station-1", "station", Some("site")))
    );
    assert_eq!(store.scope("nowhere").await.unwrap(), None);
}

async fn modules_are_replaced_not_duplicated(store: &Arc<impl Inspect>) {
    store.set_module("org", "ev-drivers", true).await.unwrap();
    store.set_module("site", "pro", true).await.unwrap();
    store.set_module("org", "ev-drivers", false).await.unwrap();
    assert_eq!(
        store.modules().await.unwrap(),
        [
            ("org".to_owned(), "ev-drivers".to_owned(), false),
            ("site".to_owned(), "pro".to_owned(), true),
        ]
    );
}

async fn principals_round_trip_and_block(store: &Arc<impl Inspect>) {
    store.put_principal(&principal("alice")).await.unwrap();
    store.put_principal(&principal("bob")).await.unwrap();
    let renamed = PrincipalRecord {
        name: "Alice A.".to_owned(),
        kind: "driver".to_owned(),
        ..principal("alice")
    };
    store.put_principal(&renamed).await.unwrap();
    assert_eq!(
        store.principals().await.unwrap(),
        [renamed.clone(), principal("bob")]
    );

    assert!(store.set_principal_blocked("bob", true).await.unwrap());
    assert!(!store.set_principal_blocked("nobody", true).await.unwrap());
    let all = store.principals().await.unwrap();
    assert!(all[1].blocked);
    assert!(!all[0].blocked);
    assert!(store.set_principal_blocked("bob", false).await.unwrap());
    assert!(!store.principals().await.unwrap()[1].blocked);
}

async fn deleting_a_principal_takes_its_credentials_and_assignments(store: &Arc<impl Inspect>) {
    for id in ["alice", "bob"] {
        store.put_principal(&principal(id)).await.unwrap();
        store
            .add_api_token(&api_token(&format!("tok-{id}"), id, &format!("hash-{id}")))
            .await
            .unwrap();
        store
            .put_id_token(&id_token(&format!("RFID-{id}"), id))
            .await
            .unwrap();
        store
            .add_assignment(&assignment(id, "viewer", "org"))
            .await
            .unwrap();
    }
    let tx = store
        .start_transaction(&NewTransaction {
            principal: Some("alice".to_owned()),
            ..new_transaction("CP-1", "k1")
        })
        .await
        .unwrap();

    assert!(!store.principal_id_retired("alice").await.unwrap());
    assert!(store.delete_principal("alice").await.unwrap());
    assert!(!store.delete_principal("alice").await.unwrap());
    assert!(store.principal_id_retired("alice").await.unwrap());
    assert!(!store.principal_id_retired("bob").await.unwrap());
    assert!(!store.principal_id_retired("nobody").await.unwrap());

    assert_eq!(store.principals().await.unwrap(), [principal("bob")]);
    assert!(store.api_tokens_of("alice").await.unwrap().is_empty());
    assert!(store
        .principal_for_token_hash("hash-alice")
        .await
        .unwrap()
        .is_none());
    assert!(named(store, "RFID-alice").await.is_empty());
    assert_eq!(
        store.assignments().await.unwrap(),
        [assignment("bob", "viewer", "org")]
    );
    assert_eq!(store.api_tokens_of("bob").await.unwrap().len(), 1);
    assert_eq!(named(store, "RFID-bob").await.len(), 1);
    // Billing history outlives the principal.
    let kept = store
        .transaction_by_key("CP-1", "k1")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(kept, tx);
}

async fn roles_round_trip(store: &Arc<impl Inspect>) {
    let role = RoleRecord {
        id: "night-shift".to_owned(),
        label: "Night shift".to_owned(),
        permissions: vec!["view-station-list".to_owned(), "reset-station".to_owned()],
    };
    store.put_role(&role).await.unwrap();
    let empty = RoleRecord {
        id: "empty".to_owned(),
        label: "Nothing".to_owned(),
        permissions: Vec::new(),
    };
    store.put_role(&empty).await.unwrap();
    assert_eq!(store.roles().await.unwrap(), [role.clone(), empty.clone()]);

    let changed = RoleRecord {
        permissions: vec!["view-station-list".to_owned()],
        ..role
    };
    store.put_role(&changed).await.unwrap();
    assert_eq!(store.roles().await.unwrap(), [changed, empty]);
}

async fn assignments_are_a_set(store: &Arc<impl Inspect>) {
    store.put_principal(&principal("alice")).await.unwrap();
    let viewer = assignment("alice", "viewer", "org");
    let admin = assignment("alice", "admin", "site");
    assert!(store.add_assignment(&viewer).await.unwrap());
    assert!(!store.add_assignment(&viewer).await.unwrap());
    assert!(store.add_assignment(&admin).await.unwrap());
    assert_eq!(
        store.assignments().await.unwrap(),
        [viewer.clone(), admin.clone()]
    );

    let err = store
        .add_assignment(&assignment("ghost", "viewer", "org"))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::NotFound(_)), "{err}");
    assert!(err.to_string().contains("ghost"), "{err}");

    assert!(store.remove_assignment(&viewer).await.unwrap());
    assert!(!store.remove_assignment(&viewer).await.unwrap());
    assert_eq!(store.assignments().await.unwrap(), [admin]);
}

async fn a_charger_is_added_with_its_station_once(store: &Arc<impl Inspect>) {
    store.put_scope(&scope("site", "site", None)).await.unwrap();
    let charger = ChargerRecord {
        id: "CP-1".to_owned(),
        scope: "site".to_owned(),
        password_hash: None,
        security_profile: 1,
        pending: true,
    };
    let station = scope("CP-1", "station", Some("site"));
    assert!(store.add_charger(&charger, &station).await.unwrap());
    assert_eq!(store.charger("CP-1").await.unwrap(), Some(charger.clone()));
    assert_eq!(
        store.scopes().await.unwrap(),
        [scope("site", "site", None), station.clone()]
    );
    let again = ChargerRecord {
        security_profile: 2,
        pending: false,
        ..charger.clone()
    };
    assert!(
        !store
            .add_charger(&again, &scope("CP-1", "other", Some("site")))
            .await
            .unwrap(),
        "a charger of that id exists"
    );
    assert_eq!(
        store.charger("CP-1").await.unwrap(),
        Some(charger),
        "nothing was written"
    );
    assert_eq!(store.scopes().await.unwrap()[1], station);
}

async fn chargers_are_read_by_the_batch(store: &Arc<impl Inspect>) {
    let ids: Vec<String> = (0..1_200).map(|n| format!("CP-{n:04}")).collect();
    for id in ids.iter().step_by(2) {
        store
            .put_charger(&ChargerRecord {
                id: id.clone(),
                scope: "site".to_owned(),
                password_hash: None,
                security_profile: 0,
                pending: id.ends_with('0'),
            })
            .await
            .unwrap();
    }
    let mut asked = ids.clone();
    asked.push("CP-NONE".to_owned());
    let mut found = store.chargers_named(&asked).await.unwrap();
    found.sort_by(|a, b| a.id.cmp(&b.id));
    let expected: Vec<&String> = ids.iter().step_by(2).collect();
    assert_eq!(found.iter().map(|c| &c.id).collect::<Vec<_>>(), expected);
    assert!(found.iter().all(|c| c.pending == c.id.ends_with('0')));
    assert!(store.chargers_named(&[]).await.unwrap().is_empty());
}

async fn charger_schema_tolerance_survives_rewrites(store: &Arc<impl Inspect>) {
    let charger = ChargerRecord {
        id: "CP-1".to_owned(),
        scope: "station-1".to_owned(),
        password_hash: None,
        security_profile: 0,
        pending: false,
    };
    store.put_charger(&charger).await.unwrap();
    store
        .put_charger(&ChargerRecord {
            id: "CP-2".to_owned(),
            ..charger.clone()
        })
        .await
        .unwrap();
    assert!(store.charger_schema_tolerances().await.unwrap().is_empty());
    assert!(store
        .set_charger_schema_tolerance("CP-2", Some("strict"))
        .await
        .unwrap());
    assert!(store
        .set_charger_schema_tolerance("CP-1", Some("lenient"))
        .await
        .unwrap());
    assert!(!store
        .set_charger_schema_tolerance("CP-9", Some("strict"))
        .await
        .unwrap());
    store
        .put_charger(&ChargerRecord {
            security_profile: 1,
            ..charger
        })
        .await
        .unwrap();
    assert_eq!(
        store.charger_schema_tolerances().await.unwrap(),
        [
            ("CP-1".to_owned(), "lenient".to_owned()),
            ("CP-2".to_owned(), "strict".to_owned())
        ],
        "a rewrite of the charger keeps its tolerance"
    );
    assert!(store
        .set_charger_schema_tolerance("CP-1", None)
        .await
        .unwrap());
    assert_eq!(
        store.charger_schema_tolerances().await.unwrap(),
        [("CP-2".to_owned(), "strict".to_owned())]
    );
}

async fn charger_behaviour_survives_rewrites(store: &Arc<impl Inspect>) {
    let charger = ChargerRecord {
        id: "CP-1".to_owned(),
        scope: "station-1".to_owned(),
        password_hash: None,
        security_profile: 0,
        pending: false,
    };
    store.put_charger(&charger).await.unwrap();
    store
        .put_charger(&ChargerRecord {
            id: "CP-2".to_owned(),
            ..charger.clone()
        })
        .await
        .unwrap();
    assert!(store.charger_behaviours().await.unwrap().is_empty());
    let quiet = ChargerBehaviour {
        id: "CP-1".to_owned(),
        post_boot_sync: Some("off".to_owned()),
        free_vend: false,
    };
    let vending = ChargerBehaviour {
        id: "CP-2".to_owned(),
        post_boot_sync: None,
        free_vend: true,
    };
    assert!(store.set_charger_behaviour(&quiet).await.unwrap());
    assert!(store.set_charger_behaviour(&vending).await.unwrap());
    assert!(!store
        .set_charger_behaviour(&ChargerBehaviour {
            id: "CP-9".to_owned(),
            ..vending.clone()
        })
        .await
        .unwrap());
    store
        .put_charger(&ChargerRecord {
            security_profile: 1,
            ..charger
        })
        .await
        .unwrap();
    assert_eq!(
        store.charger_behaviours().await.unwrap(),
        [quiet.clone(), vending],
        "a rewrite of the charger keeps its behaviour"
    );
    let back_to_defaults = ChargerBehaviour {
        id: "CP-2".to_owned(),
        post_boot_sync: None,
        free_vend: false,
    };
    assert!(store
        .set_charger_behaviour(&back_to_defaults)
        .await
        .unwrap());
    assert_eq!(store.charger_behaviours().await.unwrap(), [quiet]);
}

async fn chargers_and_boots(store: &Arc<impl Inspect>) {
    let charger = ChargerRecord {
        id: "CP-2".to_owned(),
        scope: "station-1".to_owned(),
        password_hash: Some("$argon2id$abc".to_owned()),
        security_profile: 2,
        pending: false,
    };
    let other = ChargerRecord {
        id: "CP-1".to_owned(),
        scope: "station-2".to_owned(),
        password_hash: None,
        security_profile: 0,
        pending: false,
    };
    store.put_charger(&charger).await.unwrap();
    store.put_charger(&other).await.unwrap();
    assert_eq!(store.charger("CP-2").await.unwrap(), Some(charger.clone()));
    assert_eq!(store.charger("CP-9").await.unwrap(), None);
    assert_eq!(
        store.chargers().await.unwrap(),
        [other.clone(), charger.clone()]
    );

    let moved = ChargerRecord {
        scope: "station-3".to_owned(),
        security_profile: 3,
        password_hash: None,
        ..charger
    };
    assert!(!store.charger_pending("CP-2").await.unwrap());
    assert!(store.set_charger_pending("CP-2", true).await.unwrap());
    assert!(!store.set_charger_pending("CP-9", true).await.unwrap());
    // An update (made from a record without the flag) leaves the flag as it was.
    store.put_charger(&moved).await.unwrap();
    assert_eq!(
        store.charger("CP-2").await.unwrap(),
        Some(ChargerRecord {
            pending: true,
            ..moved.clone()
        })
    );
    assert!(
        store.charger_pending("CP-2").await.unwrap(),
        "a rewrite keeps the mark"
    );
    assert!(!store.charger_pending("CP-1").await.unwrap());
    assert!(!store.charger_pending("CP-9").await.unwrap());
    assert!(store.set_charger_pending("CP-2", false).await.unwrap());
    assert!(!store.charger_pending("CP-2").await.unwrap());
    assert_eq!(store.chargers().await.unwrap().len(), 2);
    // A charger stored pending is pending from its first write on.
    let unknown = ChargerRecord {
        id: "CP-NEW".to_owned(),
        scope: "station-1".to_owned(),
        password_hash: None,
        security_profile: 0,
        pending: true,
    };
    store.put_charger(&unknown).await.unwrap();
    assert!(store.charger_pending("CP-NEW").await.unwrap());
    assert_eq!(store.charger("CP-NEW").await.unwrap(), Some(unknown));
    assert!(store.set_charger_pending("CP-NEW", false).await.unwrap());

    let first = BootRecord {
        vendor: "Acme".to_owned(),
        model: "Wallbox 1".to_owned(),
        serial: Some("SN-1".to_owned()),
        firmware: Some("1.0.0".to_owned()),
        ocpp_version: "1.6".to_owned(),
        at: "2025-03-01T09:00:00Z".to_owned(),
    };
    let second = BootRecord {
        firmware: Some("1.1.0".to_owned()),
        ocpp_version: "2.0.1".to_owned(),
        serial: None,
        at: "2025-03-02T09:00:00Z".to_owned(),
        ..first.clone()
    };
    store.record_boot("CP-2", &first).await.unwrap();
    store.record_boot("CP-2", &second).await.unwrap();
    assert_eq!(store.boots("CP-2").await.unwrap(), [second, first]);
    assert!(store.boots("CP-1").await.unwrap().is_empty());
}

async fn api_tokens(store: &Arc<impl Inspect>) {
    store.put_principal(&principal("alice")).await.unwrap();
    let first = api_token("t1", "alice", "hash-one");
    let second = ApiTokenRecord {
        expires_at: None,
        ..api_token("t2", "alice", "hash-two")
    };
    store.add_api_token(&first).await.unwrap();
    store.add_api_token(&second).await.unwrap();
    assert_eq!(
        store.principal_for_token_hash("hash-two").await.unwrap(),
        Some(second.clone())
    );
    assert_eq!(
        store.principal_for_token_hash("hash-x").await.unwrap(),
        None
    );
    assert_eq!(
        store.api_tokens_of("alice").await.unwrap(),
        [first.clone(), second.clone()]
    );
    assert!(store.api_tokens_of("bob").await.unwrap().is_empty());

    let same_id = store
        .add_api_token(&api_token("t1", "alice", "hash-three"))
        .await
        .unwrap_err();
    assert!(matches!(same_id, StoreError::Conflict(_)), "{same_id}");
    let same_hash = store
        .add_api_token(&api_token("t3", "alice", "hash-one"))
        .await
        .unwrap_err();
    assert!(matches!(same_hash, StoreError::Conflict(_)), "{same_hash}");
    assert!(!same_hash.to_string().contains("hash-one"), "{same_hash}");
    let orphan = store
        .add_api_token(&api_token("t4", "ghost", "hash-four"))
        .await
        .unwrap_err();
    assert!(matches!(orphan, StoreError::NotFound(_)), "{orphan}");
    assert!(!orphan.to_string().contains("hash-four"), "{orphan}");

    assert!(store.revoke_api_token("t1").await.unwrap());
    assert!(!store.revoke_api_token("t1").await.unwrap());
    assert_eq!(
        store.principal_for_token_hash("hash-one").await.unwrap(),
        None
    );
    assert_eq!(store.api_tokens_of("alice").await.unwrap(), [second]);
}

async fn named(store: &Arc<impl Inspect>, text: &str) -> Vec<IdTokenRecord> {
    store.id_tokens_named(text, text).await.unwrap()
}

async fn id_tokens(store: &Arc<impl Inspect>) {
    store.put_principal(&principal("driver-1")).await.unwrap();
    store.put_principal(&principal("driver-2")).await.unwrap();
    let card = id_token("RFID-B", "driver-1");
    let other = id_token("RFID-A", "driver-2");
    store.put_id_token(&card).await.unwrap();
    store.put_id_token(&other).await.unwrap();
    assert_eq!(named(store, "RFID-B").await, std::slice::from_ref(&card));
    assert!(named(store, "RFID-C").await.is_empty());
    assert_eq!(
        store.id_tokens_named("rfid-a", "RFID-A").await.unwrap(),
        std::slice::from_ref(&other),
        "found by either text"
    );

    // One text, two principals (of two tenants): two cards, each replaced on its own.
    let twin = IdTokenRecord {
        principal: "driver-2".to_owned(),
        blocked: true,
        expires_at: Some("2025-12-31T23:59:59Z".to_owned()),
        group: None,
        token_type: Some("ISO15693".to_owned()),
        ..card.clone()
    };
    store.put_id_token(&twin).await.unwrap();
    assert_eq!(
        store.id_tokens().await.unwrap(),
        [other.clone(), card.clone(), twin.clone()]
    );
    assert_eq!(
        store.id_tokens_named("RFID-A", "RFID-B").await.unwrap(),
        [other.clone(), card.clone(), twin.clone()]
    );

    // The type is replaced and cleared like every other field.
    let untyped = IdTokenRecord {
        token_type: None,
        ..twin
    };
    store.put_id_token(&untyped).await.unwrap();
    assert_eq!(named(store, "RFID-B").await, [card, untyped]);

    let err = store
        .put_id_token(&id_token("RFID-Z", "ghost"))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::NotFound(_)), "{err}");
    assert!(named(store, "RFID-Z").await.is_empty());
}

async fn id_tokens_per_principal_and_deletion(store: &Arc<impl Inspect>) {
    store.put_principal(&principal("driver-1")).await.unwrap();
    store.put_principal(&principal("driver-2")).await.unwrap();
    for (token, owner) in [
        ("TAG-2", "driver-1"),
        ("TAG-1", "driver-1"),
        ("TAG-3", "driver-2"),
    ] {
        store.put_id_token(&id_token(token, owner)).await.unwrap();
    }
    let mine: Vec<String> = store
        .id_tokens_of("driver-1")
        .await
        .unwrap()
        .into_iter()
        .map(|t| t.id_token)
        .collect();
    assert_eq!(mine, ["TAG-1", "TAG-2"]);
    assert!(store.id_tokens_of("nobody").await.unwrap().is_empty());

    assert!(
        !store.delete_id_token("driver-2", "TAG-1").await.unwrap(),
        "another principal's text"
    );
    assert!(store.delete_id_token("driver-1", "TAG-1").await.unwrap());
    assert!(
        !store.delete_id_token("driver-1", "TAG-1").await.unwrap(),
        "already gone"
    );
    assert!(named(store, "TAG-1").await.is_empty());
    assert_eq!(store.id_tokens_of("driver-1").await.unwrap().len(), 1);
    assert_eq!(store.id_tokens_of("driver-2").await.unwrap().len(), 1);
}

async fn local_lists_round_trip(store: &Arc<impl Inspect>) {
    assert_eq!(store.local_list("CP-1").await.unwrap(), None);
    let first = LocalListRecord {
        charger: "CP-1".to_owned(),
        version: 1,
        entries: json!({"TAG-1": {"status": "Accepted"}}),
        updated_at: "2024-05-01T12:00:00Z".to_owned(),
    };
    store.put_local_list(&first).await.unwrap();
    assert_eq!(store.local_list("CP-1").await.unwrap(), Some(first.clone()));

    let second = LocalListRecord {
        version: 2,
        entries: json!({}),
        updated_at: "2024-05-01T12:01:00Z".to_owned(),
        ..first
    };
    store.put_local_list(&second).await.unwrap();
    assert_eq!(store.local_list("CP-1").await.unwrap(), Some(second));
    assert_eq!(store.local_list("CP-2").await.unwrap(), None);
}

async fn start_transaction_is_idempotent(store: &Arc<impl Inspect>) {
    let first = store
        .start_transaction(&new_transaction("CP-1", "msg-1"))
        .await
        .unwrap();
    assert!(first.id > 0);
    assert_eq!(first.charger, "CP-1");
    assert_eq!(first.key, "msg-1");
    assert_eq!(first.connector, 1);
    assert_eq!(first.meter_start, Some(1000.0));
    assert_eq!(first.stopped_at, None);

    // A retry, even with drifting fields, gets the stored row back.
    let retry = store
        .start_transaction(&NewTransaction {
            connector: 2,
            meter_start: Some(1005.0),
            ..new_transaction("CP-1", "msg-1")
        })
        .await
        .unwrap();
    assert_eq!(retry, first);

    let next = store
        .start_transaction(&new_transaction("CP-1", "msg-2"))
        .await
        .unwrap();
    let elsewhere = store
        .start_transaction(&new_transaction("CP-2", "msg-1"))
        .await
        .unwrap();
    let ids: HashSet<i64> = [first.id, next.id, elsewhere.id].into();
    assert_eq!(ids.len(), 3);
    assert_eq!(
        store
            .transactions(&TransactionFilter::default())
            .await
            .unwrap()
            .len(),
        3
    );
    assert_eq!(
        store.transaction_by_key("CP-2", "msg-1").await.unwrap(),
        Some(elsewhere)
    );
    assert_eq!(
        store.transaction_by_key("CP-3", "msg-1").await.unwrap(),
        None
    );
}

async fn meter_values_need_the_chargers_transaction(store: &Arc<impl Inspect>) {
    let tx = store
        .start_transaction(&new_transaction("CP-1", "k"))
        .await
        .unwrap();
    let sample =
        json!([{"timestamp": "2025-03-01T10:05:00Z", "sampledValue": [{"value": "1200"}]}]);
    let resent = json!([{"value": "different"}]);
    store
        .add_meter_values("CP-1", tx.id, Some(1), &sample, "2025-03-01T10:05:00Z")
        .await
        .unwrap();
    store
        .add_meter_values("CP-1", tx.id, Some(1), &resent, "2025-03-01T10:05:01Z")
        .await
        .unwrap();
    store
        .add_meter_values("CP-1", tx.id, None, &resent, "2025-03-01T10:06:00Z")
        .await
        .unwrap();
    store
        .add_meter_values("CP-1", tx.id, None, &resent, "2025-03-01T10:07:00Z")
        .await
        .unwrap();

    // A 1.6 charger resending the same message (no sequence number) stores nothing new.
    store
        .add_meter_values("CP-1", tx.id, None, &resent, "2025-03-01T10:07:00Z")
        .await
        .unwrap();

    let stored = store.meter_values("CP-1", tx.id).await.unwrap();
    assert_eq!(stored.len(), 3);
    assert_eq!(stored[0].values, sample);
    assert_eq!(stored[0].seq, Some(1));
    assert_eq!(stored[2].at, "2025-03-01T10:07:00Z");

    for (charger, id) in [("CP-2", tx.id), ("CP-1", tx.id + 100)] {
        let err = store
            .add_meter_values(charger, id, Some(2), &sample, "2025-03-01T10:08:00Z")
            .await
            .unwrap_err();
        assert!(matches!(err, StoreError::NotFound(_)), "{err}");
    }
    assert!(store.meter_values("CP-2", tx.id).await.unwrap().is_empty());
}

async fn first_stop_wins(store: &Arc<impl Inspect>) {
    let tx = store
        .start_transaction(&new_transaction("CP-1", "k"))
        .await
        .unwrap();
    let stopped = store
        .stop_transaction(
            "CP-1",
            tx.id,
            Some(1500.5),
            "2025-03-01T11:00:00Z",
            Some("Local"),
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stopped.meter_stop, Some(1500.5));
    assert_eq!(stopped.stopped_at.as_deref(), Some("2025-03-01T11:00:00Z"));
    assert_eq!(stopped.stop_reason.as_deref(), Some("Local"));
    assert_eq!(stopped.started_at, tx.started_at);

    let again = store
        .stop_transaction("CP-1", tx.id, Some(9999.0), "2025-03-01T12:00:00Z", None)
        .await
        .unwrap();
    assert_eq!(again, Some(stopped.clone()));
    assert_eq!(
        store.transaction_by_key("CP-1", "k").await.unwrap(),
        Some(stopped)
    );

    assert_eq!(
        store
            .stop_transaction("CP-2", tx.id, None, "2025-03-01T12:00:00Z", None)
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        store
            .stop_transaction("CP-1", tx.id + 1, None, "2025-03-01T12:00:00Z", None)
            .await
            .unwrap(),
        None
    );
}

async fn transaction_filters(store: &Arc<impl Inspect>) {
    let mut started = Vec::new();
    for (n, (charger, principal)) in [
        ("CP-1", Some("alice")),
        ("CP-2", Some("bob")),
        ("CP-1", None),
        ("CP-1", Some("bob")),
        ("CP-2", Some("alice")),
    ]
    .into_iter()
    .enumerate()
    {
        let tx = store
            .start_transaction(&NewTransaction {
                principal: principal.map(str::to_owned),
                ..new_transaction(charger, &format!("k{n}"))
            })
            .await
            .unwrap();
        started.push(tx.id);
    }
    store
        .stop_transaction("CP-1", started[0], None, "2025-03-01T11:00:00Z", None)
        .await
        .unwrap();
    store
        .stop_transaction("CP-2", started[4], None, "2025-03-01T11:00:00Z", None)
        .await
        .unwrap();

    let ids = |found: Vec<voltgate_store::TransactionRecord>| -> Vec<i64> {
        found.into_iter().map(|t| t.id).collect()
    };
    let all = store
        .transactions(&TransactionFilter::default())
        .await
        .unwrap();
    assert_eq!(
        ids(all),
        [started[4], started[3], started[2], started[1], started[0]]
    );
    let on_cp1 = TransactionFilter {
        charger: Some("CP-1".to_owned()),
        ..TransactionFilter::default()
    };
    assert_eq!(
        ids(store.transactions(&on_cp1).await.unwrap()),
        [started[3], started[2], started[0]]
    );
    let alice = TransactionFilter {
        principal: Some("alice".to_owned()),
        ..TransactionFilter::default()
    };
    assert_eq!(
        ids(store.transactions(&alice).await.unwrap()),
        [started[4], started[0]]
    );
    let active = TransactionFilter {
        active_only: true,
        ..TransactionFilter::default()
    };
    assert_eq!(
        ids(store.transactions(&active).await.unwrap()),
        [started[3], started[2], started[1]]
    );
    let combined = TransactionFilter {
        charger: Some("CP-1".to_owned()),
        principal: Some("bob".to_owned()),
        active_only: true,
        limit: 0,
    };
    assert_eq!(
        ids(store.transactions(&combined).await.unwrap()),
        [started[3]]
    );
    let limited = TransactionFilter {
        limit: 2,
        ..TransactionFilter::default()
    };
    assert_eq!(
        ids(store.transactions(&limited).await.unwrap()),
        [started[4], started[3]]
    );
}

async fn audit_is_newest_first_and_pages(store: &Arc<impl Inspect>) {
    let mut ids = Vec::new();
    for n in 0..10 {
        ids.push(store.append_audit(&audit_record(n)).await.unwrap());
    }
    assert!(ids.windows(2).all(|pair| pair[0] < pair[1]), "{ids:?}");

    let all = store.audit(&AuditFilter::default()).await.unwrap();
    assert_eq!(all.len(), 10);
    assert_eq!(all[0].id, ids[9]);
    assert_eq!(all[0].record, audit_record(9));
    assert_eq!(all[9].record, audit_record(0));

    let first_page = store
        .audit(&AuditFilter {
            limit: 4,
            after_id: None,
        })
        .await
        .unwrap();
    let page_ids: Vec<i64> = first_page.iter().map(|r| r.id).collect();
    assert_eq!(page_ids, [ids[9], ids[8], ids[7], ids[6]]);
    let second_page = store
        .audit(&AuditFilter {
            limit: 4,
            after_id: page_ids.last().copied(),
        })
        .await
        .unwrap();
    let page_ids: Vec<i64> = second_page.iter().map(|r| r.id).collect();
    assert_eq!(page_ids, [ids[5], ids[4], ids[3], ids[2]]);
    let rest = store
        .audit(&AuditFilter {
            limit: 0,
            after_id: Some(ids[2]),
        })
        .await
        .unwrap();
    assert_eq!(rest.len(), 2);
    assert_eq!(rest[1].record, audit_record(0));
}

async fn audit_outcome(store: &Arc<impl Inspect>) {
    let id = store.append_audit(&audit_record(1)).await.unwrap();
    let other = store.append_audit(&audit_record(2)).await.unwrap();
    store.set_audit_outcome(id, "Accepted").await.unwrap();
    let listed = store.audit(&AuditFilter::default()).await.unwrap();
    assert_eq!(listed[1].id, id);
    assert_eq!(listed[1].record.outcome.as_deref(), Some("Accepted"));
    assert_eq!(listed[0].id, other);
    assert_eq!(listed[0].record.outcome, None);

    let err = store
        .set_audit_outcome(other + 1000, "Accepted")
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::NotFound(_)), "{err}");
}

/// Audit writes issued all at once (which a store may group into one statement) each get
/// the id of their own record, outcomes land on the records they name, and an outcome for a
/// record that does not exist fails alone.
async fn audit_writes_at_once_each_get_their_own_record(store: &Arc<impl Inspect>) {
    const WRITES: usize = 300;
    let appends: Vec<_> = (0..WRITES)
        .map(|n| {
            let store = Arc::clone(store);
            tokio::spawn(async move {
                let mut record = audit_record(n);
                // a few with an outcome from the start, one with no request id
                record.outcome = (n % 5 == 0).then(|| format!("at once {n}"));
                record.request_id = (n != 7).then(|| format!("req-{n}"));
                let id = store.append_audit(&record).await.unwrap();
                (id, record)
            })
        })
        .collect();
    let mut written = Vec::new();
    for append in appends {
        written.push(append.await.unwrap());
    }
    let stored: std::collections::HashMap<i64, AuditRecord> = store
        .audit(&AuditFilter::default())
        .await
        .unwrap()
        .into_iter()
        .map(|r| (r.id, r.record))
        .collect();
    assert_eq!(stored.len(), WRITES);
    for (id, record) in &written {
        assert_eq!(stored.get(id), Some(record), "record {id}");
    }

    let missing = written.iter().map(|(id, _)| id).max().unwrap() + 1_000;
    let outcomes: Vec<_> = written
        .iter()
        .map(|(id, _)| (*id, format!("outcome of {id}")))
        .chain([(missing, "nobody's".to_owned())])
        .map(|(id, outcome)| {
            let store = Arc::clone(store);
            tokio::spawn(async move { (id, store.set_audit_outcome(id, &outcome).await) })
        })
        .collect();
    for outcome in outcomes {
        let (id, result) = outcome.await.unwrap();
        if id == missing {
            assert!(matches!(result, Err(StoreError::NotFound(_))), "{result:?}");
        } else {
            result.unwrap();
        }
    }
    for stored in store.audit(&AuditFilter::default()).await.unwrap() {
        assert_eq!(
            stored.record.outcome,
            Some(format!("outcome of {}", stored.id))
        );
    }
}

async fn security_events_are_kept(store: &Arc<impl Inspect>) {
    let info = json!({"techInfo": "door opened", "severity": 3});
    store
        .security_event(
            "CP-1",
            "TamperDetectionActivated",
            "2025-03-01T10:00:00Z",
            &info,
        )
        .await
        .unwrap();
    store
        .security_event(
            "CP-1",
            "ReconfigurationOfSecurityParameters",
            "2025-03-01T10:01:00Z",
            &json!(null),
        )
        .await
        .unwrap();
    store
        .security_event(
            "CP-2",
            "FirmwareUpdated",
            "2025-03-01T10:02:00Z",
            &json!({}),
        )
        .await
        .unwrap();
    let events = store.security_events("CP-1").await.unwrap();
    assert_eq!(events.len(), 2);
    assert_eq!(events[0].kind, "ReconfigurationOfSecurityParameters");
    assert_eq!(events[1].kind, "TamperDetectionActivated");
    assert_eq!(events[1].info, info);
    assert_eq!(events[1].charger, "CP-1");
    assert_eq!(events[1].at, "2025-03-01T10:00:00Z");
}

const WRITER_TASKS: usize = 8;
const WRITES_PER_TASK: usize = 50;

/// Several tasks append audit records, start and stop transactions and add meter values at
/// once; afterwards every single write is there.
async fn concurrent_writers_lose_nothing(store: &Arc<impl Inspect>) {
    let mut tasks = Vec::new();
    for task in 0..WRITER_TASKS {
        let store = Arc::clone(store);
        tasks.push(tokio::spawn(async move {
            let mut audit_ids = Vec::new();
            for n in 0..WRITES_PER_TASK {
                audit_ids.push(
                    store
                        .append_audit(&audit_record(task * WRITES_PER_TASK + n))
                        .await
                        .unwrap(),
                );
                let charger = format!("CP-{task}");
                let tx = store
                    .start_transaction(&new_transaction(&charger, &format!("k{n}")))
                    .await
                    .unwrap();
                store
                    .add_meter_values(
                        &charger,
                        tx.id,
                        Some(0),
                        &json!([n]),
                        "2025-03-01T10:00:00Z",
                    )
                    .await
                    .unwrap();
                if n % 2 == 0 {
                    store
                        .stop_transaction(&charger, tx.id, Some(1.0), "2025-03-01T11:00:00Z", None)
                        .await
                        .unwrap()
                        .unwrap();
                }
            }
            audit_ids
        }));
    }
    let mut audit_ids = HashSet::new();
    for task in tasks {
        audit_ids.extend(task.await.unwrap());
    }
    let total = WRITER_TASKS * WRITES_PER_TASK;
    assert_eq!(audit_ids.len(), total);

    let stored = store.audit(&AuditFilter::default()).await.unwrap();
    assert_eq!(stored.len(), total);
    let stored_ids: HashSet<i64> = stored.iter().map(|r| r.id).collect();
    assert_eq!(stored_ids, audit_ids);

    let transactions = store
        .transactions(&TransactionFilter::default())
        .await
        .unwrap();
    assert_eq!(transactions.len(), total);
    let stopped = transactions
        .iter()
        .filter(|t| t.stopped_at.is_some())
        .count();
    assert_eq!(stopped, total / 2);
    for tx in &transactions {
        let samples = store.meter_values(&tx.charger, tx.id).await.unwrap();
        assert_eq!(samples.len(), 1, "transaction {}", tx.id);
    }
}

/// Many tasks report the same StartTransaction at once; exactly one row results.
async fn concurrent_retries_make_one_transaction(store: &Arc<impl Inspect>) {
    let mut tasks = Vec::new();
    for _ in 0..16 {
        let store = Arc::clone(store);
        tasks.push(tokio::spawn(async move {
            store
                .start_transaction(&new_transaction("CP-1", "same-message"))
                .await
                .unwrap()
        }));
    }
    let mut seen = HashSet::new();
    for task in tasks {
        seen.insert(task.await.unwrap().id);
    }
    assert_eq!(seen.len(), 1);
    assert_eq!(
        store
            .transactions(&TransactionFilter::default())
            .await
            .unwrap()
            .len(),
        1
    );
}

/// Writes one of everything, for the reopen tests.
async fn populate(store: &dyn Store) -> i64 {
    store
        .put_scope(&scope("org", "organisation", None))
        .await
        .unwrap();
    store
        .put_scope(&scope("site", "site", Some("org")))
        .await
        .unwrap();
    store.set_module("org", "pro", true).await.unwrap();
    store.put_principal(&principal("alice")).await.unwrap();
    store.set_principal_blocked("alice", true).await.unwrap();
    store
        .put_role(&RoleRecord {
            id: "night-shift".to_owned(),
            label: "Night shift".to_owned(),
            permissions: vec!["reset-station".to_owned()],
        })
        .await
        .unwrap();
    store
        .add_assignment(&assignment("alice", "night-shift", "site"))
        .await
        .unwrap();
    store
        .put_charger(&ChargerRecord {
            id: "CP-1".to_owned(),
            scope: "site".to_owned(),
            password_hash: Some("hash".to_owned()),
            security_profile: 1,
            pending: false,
        })
        .await
        .unwrap();
    store
        .add_api_token(&api_token("t1", "alice", "hash-one"))
        .await
        .unwrap();
    store
        .put_id_token(&id_token("RFID-1", "alice"))
        .await
        .unwrap();
    let tx = store
        .start_transaction(&new_transaction("CP-1", "k1"))
        .await
        .unwrap();
    store
        .stop_transaction(
            "CP-1",
            tx.id,
            Some(2000.0),
            "2025-03-01T11:00:00Z",
            Some("EVDisconnected"),
        )
        .await
        .unwrap();
    store
        .start_transaction(&new_transaction("CP-1", "k2"))
        .await
        .unwrap();
    let audit_id = store.append_audit(&audit_record(1)).await.unwrap();
    store.set_audit_outcome(audit_id, "Accepted").await.unwrap();
    store.append_audit(&audit_record(2)).await.unwrap();
    audit_id
}

/// Everything a store holds, as one comparable value.
async fn snapshot(store: &dyn Store) -> serde_json::Value {
    json!({
        "scopes": store.scopes().await.unwrap(),
        "modules": store.modules().await.unwrap(),
        "principals": store.principals().await.unwrap(),
        "roles": store.roles().await.unwrap(),
        "assignments": store.assignments().await.unwrap(),
        "chargers": store.chargers().await.unwrap(),
        "tokens": store.api_tokens_of("alice").await.unwrap(),
        "id_tokens": store.id_tokens().await.unwrap(),
        "transactions": store.transactions(&TransactionFilter::default()).await.unwrap(),
        "audit": store.audit(&AuditFilter::default()).await.unwrap(),
    })
}

fn file_url(dir: &tempfile::TempDir) -> String {
    format!("sqlite://{}", dir.path().join("voltgate.db").display())
}

#[tokio::test]
async fn reopening_a_file_keeps_everything() {
    let dir = tempfile::tempdir().unwrap();
    let url = file_url(&dir);
    let store = SqliteStore::open(&url).await.unwrap();
    populate(&store).await;
    store
        .record_boot(
            "CP-1",
            &BootRecord {
                vendor: "Acme".to_owned(),
                model: "W1".to_owned(),
                serial: None,
                firmware: None,
                ocpp_version: "1.6".to_owned(),
                at: "2025-03-01T09:00:00Z".to_owned(),
            },
        )
        .await
        .unwrap();
    let before = snapshot(&store).await;
    assert_eq!(before["transactions"].as_array().unwrap().len(), 2);
    assert_eq!(before["audit"].as_array().unwrap().len(), 2);
    store.close().await;
    drop(store);

    let reopened = open(&url).await.unwrap();
    assert_eq!(snapshot(reopened.as_ref()).await, before);
    // The id sequence continues instead of reusing ids.
    let next = reopened
        .start_transaction(&new_transaction("CP-1", "k3"))
        .await
        .unwrap();
    let highest = before["transactions"][0]["id"].as_i64().unwrap();
    assert!(next.id > highest);

    let sqlite = SqliteStore::open(&url).await.unwrap();
    assert_eq!(sqlite.boots("CP-1").await.unwrap().len(), 1);
}

#[tokio::test]
async fn writes_are_committed_when_the_call_returns() {
    let dir = tempfile::tempdir().unwrap();
    let url = file_url(&dir);
    let writer = open(&url).await.unwrap();
    let id = writer.append_audit(&audit_record(7)).await.unwrap();
    let tx = writer
        .start_transaction(&new_transaction("CP-1", "k"))
        .await
        .unwrap();

    // A second, independent store on the same file sees both without any close or flush.
    let observer = open(&url).await.unwrap();
    let audit = observer.audit(&AuditFilter::default()).await.unwrap();
    assert_eq!(audit.len(), 1);
    assert_eq!(audit[0].id, id);
    assert_eq!(
        observer.transaction_by_key("CP-1", "k").await.unwrap(),
        Some(tx)
    );
}

#[tokio::test]
async fn dropping_without_close_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let url = file_url(&dir);
    let before = {
        let store = open(&url).await.unwrap();
        populate(store.as_ref()).await;
        snapshot(store.as_ref()).await
    };
    let reopened = open(&url).await.unwrap();
    assert_eq!(snapshot(reopened.as_ref()).await, before);
}

#[tokio::test]
async fn migrations_run_twice_are_harmless() {
    let dir = tempfile::tempdir().unwrap();
    let url = file_url(&dir);
    let store = SqliteStore::open(&url).await.unwrap();
    populate(&store).await;
    let before = snapshot(&store).await;
    store.run_migrations().await.unwrap();
    store.run_migrations().await.unwrap();
    assert_eq!(snapshot(&store).await, before);
    store.close().await;

    // Opening migrates again.
    let reopened = SqliteStore::open(&url).await.unwrap();
    reopened.run_migrations().await.unwrap();
    assert_eq!(snapshot(&reopened).await, before);

    let memory = SqliteStore::open("sqlite::memory:").await.unwrap();
    populate(&memory).await;
    memory.run_migrations().await.unwrap();
    assert_eq!(snapshot(&memory).await, before);
}

#[tokio::test]
async fn each_memory_store_is_its_own_database() {
    let first = open("sqlite::memory:").await.unwrap();
    let second = open("sqlite::memory:").await.unwrap();
    first.append_audit(&audit_record(1)).await.unwrap();
    assert_eq!(first.audit(&AuditFilter::default()).await.unwrap().len(), 1);
    assert!(second
        .audit(&AuditFilter::default())
        .await
        .unwrap()
        .is_empty());
}

#[tokio::test]
async fn open_picks_the_backend_by_scheme() {
    let url = PostgresServer::shared().create_database().unwrap();
    let store = open(&url).await.unwrap();
    store.append_audit(&audit_record(1)).await.unwrap();
    let rows = PostgresServer::shared()
        .sql(
            url.rsplit('/').next().unwrap(),
            "SELECT count(*) FROM audit",
        )
        .unwrap();
    assert_eq!(rows, "1", "the record went to PostgreSQL");

    let err = open("mysql://root@localhost/voltgate").await.unwrap_err();
    assert!(matches!(err, StoreError::InvalidUrl(_)), "{err}");
    let err = open("voltgate.db").await.unwrap_err();
    assert!(matches!(err, StoreError::InvalidUrl(_)), "{err}");

    let dir = tempfile::tempdir().unwrap();
    let nested = dir.path().join("state").join("gateway").join("voltgate.db");
    let err = open(&format!("sqlite:{}?synchronous=normal", nested.display()))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::MissingDirectory(_)), "{err}");
    assert!(err.to_string().contains("does not exist"), "{err}");
    assert!(!nested.parent().unwrap().exists(), "nothing was created");
    std::fs::create_dir_all(nested.parent().unwrap()).unwrap();
    let store = open(&format!("sqlite:{}?synchronous=normal", nested.display()))
        .await
        .unwrap();
    store.append_audit(&audit_record(1)).await.unwrap();
    assert!(nested.exists());
}

#[tokio::test]
async fn an_unusable_directory_is_an_io_error() {
    let dir = tempfile::tempdir().unwrap();
    let blocker = dir.path().join("not-a-directory");
    std::fs::write(&blocker, b"x").unwrap();
    let url = format!("sqlite://{}", blocker.join("voltgate.db").display());
    let err = open(&url).await.unwrap_err();
    assert!(matches!(err, StoreError::Io { .. }), "{err}");
}

#[tokio::test]
async fn closing_through_the_trait_keeps_what_was_acknowledged() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("closing.db").display());
    let store = open(&url).await.unwrap();
    store.put_principal(&principal("kept")).await.unwrap();
    store.close().await;
    let err = store
        .put_principal(&principal("too-late"))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Closed), "{err}");
    let reopened = open(&url).await.unwrap();
    let ids: Vec<String> = reopened
        .principals()
        .await
        .unwrap()
        .into_iter()
        .map(|p| p.id)
        .collect();
    assert_eq!(ids, ["kept"]);
}

async fn ping_answers_while_open_and_fails_once_closed(store: &Arc<impl Inspect>) {
    store.ping().await.unwrap();
    store.close().await;
    assert!(
        store.ping().await.is_err(),
        "a closed store answered a ping"
    );
}

// --- PostgreSQL: what only a server database has to show ---

/// A fresh PostgreSQL database's URL and the name of the database.
fn postgres_database() -> (String, String) {
    let url = PostgresServer::shared().create_database().unwrap();
    let name = url.rsplit('/').next().unwrap().to_owned();
    (url, name)
}

#[tokio::test]
async fn postgres_reopened_keeps_everything() {
    let (url, _) = postgres_database();
    let store = PostgresStore::open(&url).await.unwrap();
    populate(&store).await;
    let before = snapshot(&store).await;
    assert_eq!(before["transactions"].as_array().unwrap().len(), 2);
    store.close().await;
    let err = store
        .put_principal(&principal("too-late"))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Closed), "{err}");
    drop(store);

    let reopened = open(&url).await.unwrap();
    assert_eq!(snapshot(reopened.as_ref()).await, before);
    let next = reopened
        .start_transaction(&new_transaction("CP-1", "k3"))
        .await
        .unwrap();
    let highest = before["transactions"][0]["id"].as_i64().unwrap();
    assert!(next.id > highest);
}

/// Two stores on one database, as two gateway processes: each sees what the other committed
/// as soon as the call returned, and a start retried through the other is the same session.
#[tokio::test]
async fn postgres_stores_sharing_a_database_see_each_others_writes() {
    let (url, _) = postgres_database();
    let first = open(&url).await.unwrap();
    let second = open(&url).await.unwrap();
    let id = first.append_audit(&audit_record(7)).await.unwrap();
    let tx = first
        .start_transaction(&new_transaction("CP-1", "k"))
        .await
        .unwrap();
    let audit = second.audit(&AuditFilter::default()).await.unwrap();
    assert_eq!(audit.len(), 1);
    assert_eq!(audit[0].id, id);
    assert_eq!(
        second
            .start_transaction(&new_transaction("CP-1", "k"))
            .await
            .unwrap(),
        tx
    );
}

#[tokio::test]
async fn postgres_migrations_run_twice_are_harmless() {
    let (url, _) = postgres_database();
    let store = PostgresStore::open(&url).await.unwrap();
    populate(&store).await;
    let before = snapshot(&store).await;
    store.run_migrations().await.unwrap();
    let reopened = PostgresStore::open(&url).await.unwrap();
    assert_eq!(snapshot(&reopened).await, before);
}

/// The audit log's append-only rule is the database's, not only the store's: a statement
/// from outside cannot delete or rewrite a record either.
#[tokio::test]
async fn postgres_audit_is_append_only_in_the_database() {
    let (url, name) = postgres_database();
    let store = open(&url).await.unwrap();
    let id = store.append_audit(&audit_record(1)).await.unwrap();
    let server = PostgresServer::shared();
    for statement in [
        "DELETE FROM audit".to_owned(),
        "TRUNCATE audit".to_owned(),
        format!("UPDATE audit SET allowed = NOT allowed WHERE id = {id}"),
    ] {
        let err = server.sql(&name, &statement).unwrap_err().to_string();
        assert!(err.contains("append-only"), "{statement}: {err}");
    }
    store.set_audit_outcome(id, "Accepted").await.unwrap();
    assert_eq!(store.audit(&AuditFilter::default()).await.unwrap().len(), 1);
}

/// A server that refuses, a database or user that does not exist and a server that never
/// answers are each reported at open, naming where the store was looked for but never the
/// password.
#[tokio::test]
async fn postgres_unreachable_is_a_clear_error_without_the_password() {
    let closed_port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let refused = format!("postgres://vg:s3cret@127.0.0.1:{closed_port}/estate");
    let server = PostgresServer::shared();
    let missing = format!(
        "postgres://postgres:s3cret@127.0.0.1:{}/no_such_db",
        server.port
    );
    // Accepts TCP connections and never says a word.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let mute = format!(
        "postgres://vg:s3cret@127.0.0.1:{}/estate?connect_timeout=1",
        silent.local_addr().unwrap().port()
    );
    let stranger = format!(
        "postgres://nobody:s3cret@127.0.0.1:{}/postgres",
        server.port
    );
    for (url, expected) in [
        (refused, "refused"),
        (missing, "no_such_db"),
        (stranger, "nobody"),
        (mute, "no answer within 1 s"),
    ] {
        let started = std::time::Instant::now();
        let err = match open(&url).await {
            Ok(_) => panic!("{url} opened"),
            Err(err) => err,
        };
        assert!(
            started.elapsed() < std::time::Duration::from_secs(5),
            "{url}"
        );
        assert!(matches!(err, StoreError::Unreachable { .. }), "{err}");
        let message = err.to_string();
        assert!(message.contains(expected), "{message}");
        assert!(message.contains("127.0.0.1:"), "{message}");
        assert!(!message.contains("s3cret"), "{message}");
    }
}
