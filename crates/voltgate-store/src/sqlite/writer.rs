//! The single writer of a SQLite store, with group commit.
//!
//! SQLite admits one writer at a time, and with `synchronous=FULL` every commit waits for the
//! disk to flush, which caps a naive one-commit-per-write store at a few hundred writes per
//! second. Every write of a store is therefore sent to one task owning the write connection.
//! That task takes whatever writes are queued (up to [`MAX_BATCH`]), runs each as its own
//! statement inside one `BEGIN IMMEDIATE … COMMIT`, and answers the callers only after the
//! `COMMIT` succeeded: one disk flush for the whole batch, and no caller ever hears `Ok` for a
//! write that is not committed. A write whose statement is rejected (a constraint) fails alone;
//! anything worse rolls the batch back and each write is retried in its own commit, so one bad
//! write cannot fail its neighbours. A lone queued write runs as a plain autocommit statement.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use sqlx::error::ErrorKind;
use sqlx::migrate::Migrator;
use sqlx::{Connection, SqliteConnection};
use tokio::sync::{mpsc, oneshot, Mutex};

use crate::error::StoreError;

/// Most writes committed together; bounds how long one batch holds the write lock.
const MAX_BATCH: usize = 256;

/// Writes that may wait for the writer before callers are slowed down.
const QUEUE_DEPTH: usize = 4096;

/// The future of one statement (or a short fixed sequence of them) run on a connection.
pub(super) type Statement<'c, T> = Pin<Box<dyn Future<Output = Result<T, StoreError>> + Send + 'c>>;

/// A function that runs one write with its arguments. A plain `fn` (not a closure) so the
/// writer can run it again after a rolled-back batch.
pub(super) type WriteFn<D, T> = for<'c> fn(&'c mut SqliteConnection, &'c D) -> Statement<'c, T>;

/// The connection the writer owns; `None` once the store is closed. Shared with readers only
/// for an in-memory database, whose single connection serves both.
pub(super) type SharedConnection = Arc<Mutex<Option<SqliteConnection>>>;

enum Message {
    Write(Box<dyn Job>),
    Migrate(&'static Migrator, oneshot::Sender<Result<(), StoreError>>),
    Close(oneshot::Sender<()>),
}

/// What the writer has done since the store was opened; `writes / commits` is the average
/// group-commit size.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WriteStats {
    /// Writes that succeeded and are committed.
    pub writes: u64,
    /// Commits that made them durable (each one disk flush with `synchronous=FULL`).
    pub commits: u64,
}

#[derive(Debug, Default)]
struct Counters {
    writes: AtomicU64,
    commits: AtomicU64,
}

/// The handle callers use to queue writes.
#[derive(Debug, Clone)]
pub(super) struct Writer {
    inbox: mpsc::Sender<Message>,
    counters: Arc<Counters>,
}

impl Writer {
    /// Starts the writer task on the current tokio runtime.
    pub(super) fn spawn(connection: SharedConnection) -> Writer {
        let (inbox, messages) = mpsc::channel(QUEUE_DEPTH);
        let counters = Arc::new(Counters::default());
        tokio::spawn(run(connection, messages, Arc::clone(&counters)));
        Writer { inbox, counters }
    }

    pub(super) fn stats(&self) -> WriteStats {
        WriteStats {
            writes: self.counters.writes.load(Ordering::Relaxed),
            commits: self.counters.commits.load(Ordering::Relaxed),
        }
    }

    /// Runs `statement` with `data` and returns its result once it is committed.
    pub(super) async fn write<D, T>(
        &self,
        data: D,
        statement: WriteFn<D, T>,
    ) -> Result<T, StoreError>
    where
        D: Send + Sync + 'static,
        T: Send + 'static,
    {
        let (reply, answer) = oneshot::channel();
        let job = WriteJob {
            data,
            statement,
            result: None,
            reply,
        };
        self.inbox
            .send(Message::Write(Box::new(job)))
            .await
            .map_err(|_| StoreError::Closed)?;
        answer.await.map_err(|_| StoreError::Closed)?
    }

    /// Applies pending migrations between two batches.
    pub(super) async fn migrate(&self, migrator: &'static Migrator) -> Result<(), StoreError> {
        let (reply, answer) = oneshot::channel();
        self.inbox
            .send(Message::Migrate(migrator, reply))
            .await
            .map_err(|_| StoreError::Closed)?;
        answer.await.map_err(|_| StoreError::Closed)?
    }

    /// Commits what was queued before, closes the connection and refuses later writes.
    pub(super) async fn close(&self) {
        let (reply, answer) = oneshot::channel();
        if self.inbox.send(Message::Close(reply)).await.is_ok() {
            // An error means the writer is already gone, which is the state asked for.
            let _ = answer.await;
        }
    }
}

/// Whether a failed write leaves the surrounding transaction usable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    Applied,
    /// Refused on its own (a constraint, a missing row): the surrounding transaction goes on.
    Rejected,
    /// The transaction can no longer be trusted.
    Broken,
}

trait Job: Send {
    fn run<'a>(
        &'a mut self,
        conn: &'a mut SqliteConnection,
    ) -> Pin<Box<dyn Future<Output = Step> + Send + 'a>>;
    /// Answers the caller with the result of the last run; `true` if that was a success.
    fn finish(self: Box<Self>) -> bool;
}

struct WriteJob<D, T> {
    data: D,
    statement: WriteFn<D, T>,
    result: Option<Result<T, StoreError>>,
    reply: oneshot::Sender<Result<T, StoreError>>,
}

impl<D, T> Job for WriteJob<D, T>
where
    D: Send + Sync + 'static,
    T: Send + 'static,
{
    fn run<'a>(
        &'a mut self,
        conn: &'a mut SqliteConnection,
    ) -> Pin<Box<dyn Future<Output = Step> + Send + 'a>> {
        Box::pin(async move {
            let result = (self.statement)(conn, &self.data).await;
            let step = step_after(&result);
            self.result = Some(result);
            step
        })
    }

    fn finish(self: Box<Self>) -> bool {
        let Some(result) = self.result else {
            return false;
        };
        let succeeded = result.is_ok();
        // The caller may have stopped waiting; the write stands either way.
        let _ = self.reply.send(result);
        succeeded
    }
}

fn step_after<T>(result: &Result<T, StoreError>) -> Step {
    match result {
        Ok(_) => Step::Applied,
        Err(StoreError::Conflict(_) | StoreError::NotFound(_) | StoreError::Corrupt(_)) => {
            Step::Rejected
        }
        Err(StoreError::Database(sqlx::Error::Database(db)))
            if matches!(
                db.kind(),
                ErrorKind::UniqueViolation
                    | ErrorKind::ForeignKeyViolation
                    | ErrorKind::NotNullViolation
                    | ErrorKind::CheckViolation
            ) =>
        {
            Step::Rejected
        }
        Err(_) => Step::Broken,
    }
}

async fn run(
    connection: SharedConnection,
    mut messages: mpsc::Receiver<Message>,
    counters: Arc<Counters>,
) {
    while let Some(first) = messages.recv().await {
        let mut batch: Vec<Box<dyn Job>> = Vec::new();
        let mut control = None;
        match first {
            Message::Write(job) => batch.push(job),
            other => control = Some(other),
        }
        while control.is_none() && batch.len() < MAX_BATCH {
            match messages.try_recv() {
                Ok(Message::Write(job)) => batch.push(job),
                Ok(other) => control = Some(other),
                Err(_) => break,
            }
        }

        let mut guard = connection.lock().await;
        let Some(conn) = guard.as_mut() else {
            // Closed: dropping the jobs answers their callers with `Closed`.
            break;
        };
        let commits = commit(conn, &mut batch).await;
        let writes = batch.into_iter().map(Job::finish).filter(|&ok| ok).count();
        counters.commits.fetch_add(commits, Ordering::Relaxed);
        counters
            .writes
            .fetch_add(u64::try_from(writes).unwrap_or(u64::MAX), Ordering::Relaxed);
        match control {
            None | Some(Message::Write(_)) => {}
            Some(Message::Migrate(migrator, reply)) => {
                let outcome = migrator.run_direct(conn).await.map_err(StoreError::from);
                let _ = reply.send(outcome);
            }
            Some(Message::Close(reply)) => {
                messages.close();
                if let Some(conn) = guard.take() {
                    // A failed close leaves nothing to undo: every answered write is committed.
                    let _ = conn.close().await;
                }
                let _ = reply.send(());
                break;
            }
        }
    }
}

/// Runs and commits the batch; returns how many commits that took.
async fn commit(conn: &mut SqliteConnection, batch: &mut [Box<dyn Job>]) -> u64 {
    match batch {
        [] => 0,
        // An autocommit statement is committed when it returns.
        [job] => u64::from(job.run(conn).await == Step::Applied),
        jobs => {
            if commit_together(conn, jobs).await {
                return 1;
            }
            let mut commits = 0;
            for job in jobs.iter_mut() {
                commits += u64::from(job.run(conn).await == Step::Applied);
            }
            commits
        }
    }
}

/// Runs the jobs in one transaction; `false` if it was rolled back and nothing of it was kept.
async fn commit_together(conn: &mut SqliteConnection, jobs: &mut [Box<dyn Job>]) -> bool {
    if execute(conn, "BEGIN IMMEDIATE").await.is_err() {
        rollback(conn).await;
        return false;
    }
    for job in jobs.iter_mut() {
        if job.run(conn).await == Step::Broken {
            rollback(conn).await;
            return false;
        }
    }
    if execute(conn, "COMMIT").await.is_ok() {
        return true;
    }
    rollback(conn).await;
    false
}

/// Leaves the connection in autocommit mode. SQLite may already have rolled the transaction
/// back by itself, in which case ROLLBACK reports that no transaction is active: either way
/// nothing of the transaction remains.
async fn rollback(conn: &mut SqliteConnection) {
    let _ = execute(conn, "ROLLBACK").await;
}

async fn execute(conn: &mut SqliteConnection, sql: &'static str) -> Result<(), sqlx::Error> {
    sqlx::query(sql).execute(conn).await.map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;
    use sqlx::ConnectOptions;

    async fn writer_on_memory() -> (Writer, SharedConnection) {
        let mut conn = sqlx::sqlite::SqliteConnectOptions::new()
            .in_memory(true)
            .connect()
            .await
            .unwrap();
        sqlx::query("CREATE TABLE notes (id INTEGER PRIMARY KEY, text TEXT NOT NULL UNIQUE)")
            .execute(&mut conn)
            .await
            .unwrap();
        let shared: SharedConnection = Arc::new(Mutex::new(Some(conn)));
        (Writer::spawn(Arc::clone(&shared)), shared)
    }

    fn insert_note<'c>(conn: &'c mut SqliteConnection, text: &'c String) -> Statement<'c, i64> {
        Box::pin(async move {
            let done = sqlx::query("INSERT INTO notes (text) VALUES (?)")
                .bind(text)
                .execute(conn)
                .await?;
            Ok(done.last_insert_rowid())
        })
    }

    fn broken_statement<'c>(conn: &'c mut SqliteConnection, _: &'c String) -> Statement<'c, i64> {
        Box::pin(async move {
            sqlx::query("INSERT INTO missing_table (text) VALUES ('x')")
                .execute(conn)
                .await?;
            Ok(0)
        })
    }

    async fn notes(shared: &SharedConnection) -> Vec<String> {
        let mut guard = shared.lock().await;
        let conn = guard.as_mut().unwrap();
        sqlx::query_scalar("SELECT text FROM notes ORDER BY id")
            .fetch_all(conn)
            .await
            .unwrap()
    }

    /// Spawns the writes before yielding, so they all queue up and land in one batch.
    async fn write_all(writer: &Writer, writes: Vec<(String, WriteFn<String, i64>)>) -> Vec<bool> {
        let tasks: Vec<_> = writes
            .into_iter()
            .map(|(text, statement)| {
                let writer = writer.clone();
                tokio::spawn(async move { writer.write(text, statement).await })
            })
            .collect();
        let mut outcomes = Vec::new();
        for task in tasks {
            outcomes.push(task.await.unwrap().is_ok());
        }
        outcomes
    }

    #[tokio::test]
    async fn queued_writes_share_one_commit_and_a_rejected_one_fails_alone() {
        let (writer, shared) = writer_on_memory().await;
        let texts = ["a", "b", "a", "c", "d"];
        let writes = texts
            .iter()
            .map(|text| (text.to_string(), insert_note as WriteFn<String, i64>))
            .collect();
        let outcomes = write_all(&writer, writes).await;
        assert_eq!(outcomes, [true, true, false, true, true]);
        assert_eq!(notes(&shared).await, ["a", "b", "c", "d"]);
        assert_eq!(
            writer.stats(),
            WriteStats {
                writes: 4,
                commits: 1
            }
        );
    }

    #[tokio::test]
    async fn a_broken_write_rolls_the_batch_back_and_the_others_commit_alone() {
        let (writer, shared) = writer_on_memory().await;
        let writes = vec![
            ("a".to_owned(), insert_note as WriteFn<String, i64>),
            ("x".to_owned(), broken_statement as WriteFn<String, i64>),
            ("b".to_owned(), insert_note as WriteFn<String, i64>),
        ];
        let outcomes = write_all(&writer, writes).await;
        assert_eq!(outcomes, [true, false, true]);
        assert_eq!(notes(&shared).await, ["a", "b"]);
        assert_eq!(
            writer.stats(),
            WriteStats {
                writes: 2,
                commits: 2
            }
        );
    }

    #[tokio::test]
    async fn writes_after_close_are_refused() {
        let (writer, shared) = writer_on_memory().await;
        writer.write("a".to_owned(), insert_note).await.unwrap();
        writer.close().await;
        assert!(shared.lock().await.is_none());
        let refused = writer.write("b".to_owned(), insert_note).await;
        assert!(matches!(refused, Err(StoreError::Closed)), "{refused:?}");
        writer.close().await;
    }
}
