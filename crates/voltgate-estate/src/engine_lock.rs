//! The lock around the role engine, which a thread may read twice without deadlocking.
//!
//! Decisions read the engine from many tasks at once and changes write it now and then, so it
//! sits behind a task-fair reader-writer lock: once a change waits, new readers queue behind
//! it. A thread that already reads the engine and asks for it again (a helper that reads it,
//! called while the caller still holds its own guard) would then wait for the change, which
//! waits for that thread: both stall, and with them the runtime's worker threads. Which code
//! paths nest is not visible at the call site, so this lock remembers, per thread, which
//! engines the thread reads; a nested read skips the queue (safe, since no change can hold the
//! lock while this thread reads it). A change asked for on a thread that reads the same engine
//! can never proceed and is refused with a panic that names the mistake, instead of a silent
//! hang.

use std::cell::RefCell;
use std::ops::{Deref, DerefMut};

use voltgate_policy::Engine;

thread_local! {
    /// The engine locks this thread holds a guard of, once per guard.
    static HELD: RefCell<Vec<usize>> = const { RefCell::new(Vec::new()) };
}

/// The role engine behind its lock; see the module docs.
pub(crate) struct EngineLock {
    inner: parking_lot::RwLock<Engine>,
}

/// Read access to the engine. Hold it briefly and never across an await.
pub struct EngineRead<'a> {
    guard: parking_lot::RwLockReadGuard<'a, Engine>,
    held: Held,
}

/// Write access to the engine, for a change the estate already validated.
pub struct EngineWrite<'a> {
    guard: parking_lot::RwLockWriteGuard<'a, Engine>,
    _held: Held,
}

/// This thread's note that it holds a guard of one lock; removed when the guard is dropped.
struct Held(usize);

impl Held {
    fn note(lock: usize) -> Held {
        HELD.with(|held| held.borrow_mut().push(lock));
        Held(lock)
    }

    fn by_this_thread(lock: usize) -> bool {
        HELD.with(|held| held.borrow().contains(&lock))
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        HELD.with(|held| {
            let mut held = held.borrow_mut();
            if let Some(at) = held.iter().rposition(|lock| *lock == self.0) {
                held.swap_remove(at);
            }
        });
    }
}

impl EngineLock {
    pub(crate) fn new(engine: Engine) -> EngineLock {
        EngineLock {
            inner: parking_lot::RwLock::new(engine),
        }
    }

    fn address(&self) -> usize {
        std::ptr::from_ref(self) as usize
    }

    pub(crate) fn read(&self) -> EngineRead<'_> {
        let lock = self.address();
        let guard = if Held::by_this_thread(lock) {
            self.inner.read_recursive()
        } else {
            self.inner.read()
        };
        EngineRead {
            guard,
            held: Held::note(lock),
        }
    }

    /// # Panics
    /// On a thread that holds a guard of this engine already: the change could never start.
    pub(crate) fn write(&self) -> EngineWrite<'_> {
        let lock = self.address();
        assert!(
            !Held::by_this_thread(lock),
            "the role engine was to be changed on a thread that still holds it; \
             drop the engine guard before the change"
        );
        EngineWrite {
            guard: self.inner.write(),
            _held: Held::note(lock),
        }
    }
}

impl Deref for EngineRead<'_> {
    type Target = Engine;
    fn deref(&self) -> &Engine {
        &self.guard
    }
}

impl Deref for EngineWrite<'_> {
    type Target = Engine;
    fn deref(&self) -> &Engine {
        &self.guard
    }
}

impl DerefMut for EngineWrite<'_> {
    fn deref_mut(&mut self) -> &mut Engine {
        &mut self.guard
    }
}

impl std::fmt::Debug for EngineRead<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EngineRead")
            .field("lock", &self.held.0)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::mpsc;
    use std::sync::Arc;
    use std::time::Duration;

    use voltgate_policy::Preset;

    use super::*;

    fn lock() -> Arc<EngineLock> {
        let preset = Preset::builtin("connect").expect("the connect preset");
        Arc::new(EngineLock::new(Engine::new(preset)))
    }

    /// Waits until `lock` has a writer queued (parked behind the readers).
    fn wait_for_queued_writer(lock: &EngineLock) {
        for _ in 0..500 {
            if lock.inner.is_locked_exclusive() {
                return;
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        panic!("the change never queued");
    }

    #[test]
    fn a_thread_that_reads_the_engine_reads_it_again_while_a_change_waits() {
        let lock = lock();
        let (done_tx, done) = mpsc::channel();
        let reader = {
            let lock = Arc::clone(&lock);
            std::thread::spawn(move || {
                let first = lock.read();
                let (queued_tx, queued) = mpsc::channel::<()>();
                let writer = {
                    let lock = Arc::clone(&lock);
                    std::thread::spawn(move || {
                        queued_tx.send(()).unwrap();
                        let _change = lock.write();
                    })
                };
                queued.recv().unwrap();
                wait_for_queued_writer(&lock);
                let again = lock.read();
                let same = std::ptr::eq(&*first, &*again);
                drop(again);
                drop(first);
                done_tx.send(same).unwrap();
                writer.join().unwrap();
            })
        };
        let same = done
            .recv_timeout(Duration::from_secs(10))
            .expect("the nested read waited for the change that waited for it");
        assert!(same);
        reader.join().unwrap();
    }

    #[test]
    #[should_panic(expected = "still holds it")]
    fn a_change_on_a_thread_that_reads_the_engine_is_refused() {
        let lock = lock();
        let _reading = lock.read();
        let _change = lock.write();
    }

    #[test]
    fn guards_of_different_engines_do_not_count_as_nested() {
        let (one, two) = (lock(), lock());
        let _reading_one = one.read();
        let _changing_two = two.write();
        drop(_changing_two);
        let _reading_two = two.read();
    }

    #[test]
    fn a_change_after_the_reads_ended_proceeds() {
        let lock = lock();
        {
            let _a = lock.read();
            let _b = lock.read();
        }
        let _change = lock.write();
    }
}
