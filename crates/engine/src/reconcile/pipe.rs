//! The scope's transaction, lent to a writer task: queued writes run in order on it while the
//! engine merges the next batch, and anything that reads takes it back once they are written.

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

/// Where the open transaction is: nowhere, here, or with the writer task.
#[derive(Default)]
pub(super) enum TxSlot {
    #[default]
    Empty,
    Here(StoreTx),
    Away {
        jobs: mpsc::Sender<Job>,
        writer: Writer,
    },
}

/// The writer task, stopped if it is dropped before it was joined (the run was cancelled, or
/// failed): the transaction it holds goes with it, so it is rolled back at once instead of
/// after the writes still queued.
pub(super) struct Writer(Option<JoinHandle<Result<StoreTx, StoreError>>>);

impl Drop for Writer {
    fn drop(&mut self) {
        if let Some(task) = self.0.take() {
            task.abort();
        }
    }
}

impl TxSlot {
    pub(super) fn is_empty(&self) -> bool {
        matches!(self, Self::Empty)
    }

    /// The transaction, here, after every queued write ran; `None` when there is none. A write
    /// that failed fails this (its transaction is dropped, so rolled back).
    pub(super) async fn here(&mut self) -> Result<Option<&mut StoreTx>, ReconcileError> {
        *self = match std::mem::take(self) {
            Self::Away { jobs, writer } => {
                // Closed, the queue ends the writer's loop once it is written.
                drop(jobs);
                Self::Here(join(writer).await?)
            }
            other => other,
        };
        Ok(match self {
            Self::Here(tx) => Some(tx),
            _ => None,
        })
    }

    /// Takes the transaction out (to commit or roll it back), once every queued write ran.
    pub(super) async fn take(&mut self) -> Result<Option<StoreTx>, ReconcileError> {
        self.here().await?;
        Ok(match std::mem::take(self) {
            Self::Here(tx) => Some(tx),
            _ => None,
        })
    }

    /// Rolls the transaction back without running what is still queued (the run failed).
    pub(super) async fn discard(&mut self) {
        match std::mem::take(self) {
            Self::Here(tx) => {
                let _ = tx.rollback().await;
            }
            // Dropped, the writer task stops, and its transaction is rolled back as it drops.
            away => drop(away),
        }
    }

    /// Queues a write; the call returns once it is queued, not written. Without a transaction
    /// the write is dropped (callers open one first).
    pub(super) async fn queue(&mut self, job: Job) -> Result<(), ReconcileError> {
        *self = match std::mem::take(self) {
            Self::Here(tx) => {
                let (jobs, rx) = mpsc::channel(QUEUED);
                Self::Away {
                    jobs,
                    writer: Writer(Some(tokio::spawn(write_all(tx, rx)))),
                }
            }
            other => other,
        };
        let Self::Away { jobs, .. } = self else {
            return Ok(());
        };
        if jobs.send(job).await.is_err() {
            // The writer stopped at a failed write: its error is the answer.
            self.here().await?;
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
        let mut slot = TxSlot::Here(store.begin_write().await.expect("begin"));
        for (uid, name) in entities {
            slot.queue(insert(store, vec![entity(uid, name)]))
                .await
                .expect("queued");
        }
        slot
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
