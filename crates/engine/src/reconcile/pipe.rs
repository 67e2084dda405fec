//! The scope's transaction, lent to a writer task: queued writes run in order on it while the
//! engine merges the next batch, and anything that reads takes it back once they are written.
//! A batch's writes may be held back so the next batch reads before they run (see [`Held`]).

use std::collections::HashSet;
use std::future::Future;
use std::pin::Pin;

use surveyor_store::{StoreError, StoreTx};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::report::ReconcileError;

/// Writes queued ahead of the writer at most: each holds a batch's rows, so the bound is what
/// keeps memory flat when the engine is faster than the database.
const QUEUED: usize = 1;

/// One write on the transaction, owning its rows.
pub(super) type Job = Box<
    dyn for<'t> FnOnce(
            &'t mut StoreTx,
        ) -> Pin<Box<dyn Future<Output = Result<(), StoreError>> + Send + 't>>
        + Send,
>;

/// Where the open transaction is, and the writes held back from it, if any.
#[derive(Default)]
pub(super) struct TxSlot {
    at: At,
    held: Option<Held>,
}

/// Where the open transaction is: nowhere, here, or with the writer task.
#[derive(Default)]
enum At {
    #[default]
    Empty,
    Here(StoreTx),
    Away {
        jobs: mpsc::Sender<Job>,
        writer: Writer,
    },
}

/// A batch's entity, relation and change writes, held back so that the next batch can read
/// first: they touch only the entity rows of `refs` (and the relations and change rows those
/// make), so any read that does not ask for those refs, or for relations, finds the same.
struct Held {
    refs: HashSet<String>,
    job: Job,
}

/// The writer task, stopped if it is dropped before it was joined (the run was cancelled, or
/// failed): the transaction it holds goes with it, so it is rolled back at once instead of
/// after the writes still queued.
struct Writer(Option<JoinHandle<Result<StoreTx, StoreError>>>);

impl Drop for Writer {
    fn drop(&mut self) {
        if let Some(task) = self.0.take() {
            task.abort();
        }
    }
}

impl TxSlot {
    pub(super) fn is_empty(&self) -> bool {
        matches!(self.at, At::Empty)
    }

    pub(super) fn new(tx: StoreTx) -> Self {
        Self {
            at: At::Here(tx),
            held: None,
        }
    }

    /// The transaction, here, after every write (queued or held) ran; `None` when there is
    /// none. A write that failed fails this (its transaction is dropped, so rolled back).
    pub(super) async fn here(&mut self) -> Result<Option<&mut StoreTx>, ReconcileError> {
        self.release().await?;
        self.ahead().await
    }

    /// The transaction, here, after every queued write ran, with held writes still held: for
    /// reads and writes of tables they do not touch (observations, identity keys and aliases).
    pub(super) async fn ahead(&mut self) -> Result<Option<&mut StoreTx>, ReconcileError> {
        self.at = match std::mem::take(&mut self.at) {
            At::Away { jobs, writer } => {
                // Closed, the queue ends the writer's loop once it is written.
                drop(jobs);
                At::Here(join(writer).await?)
            }
            other => other,
        };
        Ok(match &mut self.at {
            At::Here(tx) => Some(tx),
            _ => None,
        })
    }

    /// As [`TxSlot::ahead`], for reads of the entity rows of `refs`: held writes that touch
    /// any of them run first.
    pub(super) async fn reading(
        &mut self,
        refs: &[String],
    ) -> Result<Option<&mut StoreTx>, ReconcileError> {
        if self
            .held
            .as_ref()
            .is_some_and(|h| refs.iter().any(|r| h.refs.contains(r)))
        {
            self.release().await?;
        }
        self.ahead().await
    }

    /// Holds a batch's writes back (see [`Held`]); writes held before are queued first.
    pub(super) async fn hold(
        &mut self,
        refs: HashSet<String>,
        job: Job,
    ) -> Result<(), ReconcileError> {
        self.release().await?;
        self.held = Some(Held { refs, job });
        Ok(())
    }

    /// Queues the held writes, if any: the writer runs them while the engine goes on.
    pub(super) async fn release(&mut self) -> Result<(), ReconcileError> {
        match self.held.take() {
            Some(held) => self.send(held.job).await,
            None => Ok(()),
        }
    }

    /// Takes the transaction out (to commit or roll it back), once every write ran.
    pub(super) async fn take(&mut self) -> Result<Option<StoreTx>, ReconcileError> {
        self.here().await?;
        Ok(match std::mem::take(&mut self.at) {
            At::Here(tx) => Some(tx),
            _ => None,
        })
    }

    /// Rolls the transaction back without running what is still queued or held (the run
    /// failed).
    pub(super) async fn discard(&mut self) {
        self.held = None;
        match std::mem::take(&mut self.at) {
            At::Here(tx) => {
                let _ = tx.rollback().await;
            }
            // Dropped, the writer task stops, and its transaction is rolled back as it drops.
            away => drop(away),
        }
    }

    /// Queues a write, after any held ones; the call returns once it is queued, not written.
    /// Without a transaction the write is dropped (callers open one first).
    pub(super) async fn queue(&mut self, job: Job) -> Result<(), ReconcileError> {
        self.release().await?;
        self.send(job).await
    }

    async fn send(&mut self, job: Job) -> Result<(), ReconcileError> {
        self.at = match std::mem::take(&mut self.at) {
            At::Here(tx) => {
                let (jobs, rx) = mpsc::channel(QUEUED);
                At::Away {
                    jobs,
                    writer: Writer(Some(tokio::spawn(write_all(tx, rx)))),
                }
            }
            other => other,
        };
        let At::Away { jobs, .. } = &self.at else {
            return Ok(());
        };
        if jobs.send(job).await.is_err() {
            // The writer stopped at a failed write: its error is the answer.
            self.ahead().await?;
        }
        Ok(())
    }
}

/// The writer task: runs each job in turn and gives the transaction back, or stops at the
/// first failure.
async fn write_all(mut tx: StoreTx, mut jobs: mpsc::Receiver<Job>) -> Result<StoreTx, StoreError> {
    while let Some(job) = jobs.recv().await {
        job(&mut tx).await?;
    }
    Ok(tx)
}

async fn join(mut writer: Writer) -> Result<StoreTx, ReconcileError> {
    let Some(task) = writer.0.take() else {
        return Err(ReconcileError::Writer("joined twice".into()));
    };
    match task.await {
        Ok(result) => Ok(result?),
        Err(e) => Err(ReconcileError::Writer(e.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use chrono::Utc;
    use surveyor_store::{EntityFilter, EntityWrite, Store, Writes};

    use super::*;

    fn entity(uid: &str, name: &str) -> EntityWrite {
        EntityWrite {
            uid: uid.into(),
            entity_ref: format!("component:default/{name}"),
            display_ref: format!("component:default/{name}"),
            kind: "component".into(),
            namespace: "default".into(),
            name: name.into(),
            body: "{}".into(),
            hash: "h".into(),
            sources: "[]".into(),
            meta_hash: "m".into(),
        }
    }

    fn insert(store: &Store, rows: Vec<EntityWrite>) -> Job {
        let mut writes = Writes::new(store, Utc::now());
        writes.entities(&rows);
        Box::new(move |tx| Box::pin(tx.run(writes)))
    }

    /// A new transaction with one queued insert per `(uid, name)`, in order.
    async fn queued(store: &Store, entities: [(&str, &str); 2]) -> TxSlot {
        let mut slot = TxSlot::new(store.begin_write().await.expect("begin"));
        for (uid, name) in entities {
            slot.queue(insert(store, vec![entity(uid, name)]))
                .await
                .expect("queued");
        }
        slot
    }

    /// Held writes stay out of reads of other refs, run before a read of their own refs, and
    /// before anything that takes the transaction; a discarded slot drops them.
    #[tokio::test]
    async fn held_writes_run_before_whatever_could_see_them() {
        let dir = tempfile::tempdir().expect("dir");
        let url = format!("sqlite://{}", dir.path().join("c.db").display());
        let store = Store::connect(&url).await.expect("open");
        let key = |name: &str| format!("component:default/{name}");
        let stored = async |slot: &mut TxSlot, name: &str| {
            let tx = slot.ahead().await.expect("joined").expect("a transaction");
            tx.entities_by_refs(&[key(name)]).await.expect("read").len()
        };

        let mut slot = TxSlot::new(store.begin_write().await.expect("begin"));
        let hold = async |slot: &mut TxSlot, uid: &str, name: &str| {
            let refs = HashSet::from([key(name)]);
            slot.hold(refs, insert(&store, vec![entity(uid, name)]))
                .await
                .expect("held");
        };
        hold(&mut slot, "u1", "a").await;
        slot.reading(&[key("b")]).await.expect("read ahead");
        assert_eq!(
            stored(&mut slot, "a").await,
            0,
            "held back from a read of b"
        );
        slot.reading(&[key("b"), key("a")]).await.expect("read");
        assert_eq!(
            stored(&mut slot, "a").await,
            1,
            "written before a read of a"
        );

        // Holding the next batch's writes lets the writer run the ones held before.
        hold(&mut slot, "u2", "b").await;
        hold(&mut slot, "u3", "c").await;
        assert_eq!(stored(&mut slot, "b").await, 1);
        assert_eq!(stored(&mut slot, "c").await, 0);
        let tx = slot.take().await.expect("written").expect("a transaction");
        tx.commit().await.expect("commit");
        assert_eq!(
            store
                .count_entities(&EntityFilter::default())
                .await
                .expect("count"),
            3
        );

        let mut slot = TxSlot::new(store.begin_write().await.expect("begin"));
        hold(&mut slot, "u4", "d").await;
        slot.discard().await;
        assert!(slot.is_empty());
        assert_eq!(
            store
                .count_entities(&EntityFilter::default())
                .await
                .expect("count"),
            3
        );
        store.close().await;
    }

    #[tokio::test]
    async fn queued_writes_run_in_order_and_a_failed_one_fails_the_transaction() {
        let dir = tempfile::tempdir().expect("dir");
        let url = format!("sqlite://{}", dir.path().join("c.db").display());
        let store = Store::connect(&url).await.expect("open");
        let all = EntityFilter::default();

        // Two writes queued, the transaction taken back: both are in it, in order.
        let mut slot = queued(&store, [("u1", "a"), ("u2", "b")]).await;
        let tx = slot.take().await.expect("written").expect("a transaction");
        assert!(slot.is_empty());
        tx.commit().await.expect("commit");
        assert_eq!(store.count_entities(&all).await.expect("count"), 2);

        // A write that breaks a constraint (a second entity under a taken ref): the next use of
        // the slot fails, the transaction is gone (rolled back, the write lock free again).
        let mut slot = queued(&store, [("u3", "c"), ("u4", "a")]).await;
        // The failure surfaces at the next queue, or when the transaction is taken back.
        let error = match slot.queue(insert(&store, vec![entity("u5", "d")])).await {
            Err(e) => e,
            Ok(()) => slot
                .here()
                .await
                .err()
                .expect("the failed write fails the slot"),
        };
        assert!(matches!(error, ReconcileError::Store(_)), "{error}");
        assert!(slot.is_empty());
        assert!(slot.take().await.expect("nothing left to fail").is_none());
        let again = store.begin_write().await.expect("the write lock is free");
        again.rollback().await.expect("rollback");
        assert_eq!(store.count_entities(&all).await.expect("count"), 2);

        // Discarded with writes queued (a run that failed elsewhere): none of them stays.
        let mut slot = queued(&store, [("u6", "e"), ("u7", "f")]).await;
        slot.discard().await;
        assert!(slot.is_empty());
        let again = store.begin_write().await.expect("the write lock is free");
        again.rollback().await.expect("rollback");
        assert_eq!(store.count_entities(&all).await.expect("count"), 2);
        store.close().await;
    }
}
